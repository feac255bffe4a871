"""Linux terminal ABI: struct termios (kernel layout), its mode bits and control characters,
struct winsize, and the devpts numbers."""
import struct

TERMIOS = struct.Struct("<IIIIB19s")  # c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_cc[NCCS]
WINSIZE = struct.Struct("<HHHH")  # ws_row, ws_col, ws_xpixel, ws_ypixel
NCCS = 19

# c_iflag
ISTRIP = 0o40
INLCR = 0o100
IGNCR = 0o200
ICRNL = 0o400
IXON = 0o2000
IXANY = 0o4000
IUTF8 = 0o40000

# c_oflag
OPOST = 0o1
ONLCR = 0o4
OCRNL = 0o10
ONOCR = 0o20
ONLRET = 0o40
TABDLY = 0o14000
XTABS = 0o14000

# c_cflag
B38400 = 0o17
CS8 = 0o60
CREAD = 0o200

# c_lflag
ISIG = 0o1
ICANON = 0o2
ECHO = 0o10
ECHOE = 0o20
ECHOK = 0o40
ECHONL = 0o100
NOFLSH = 0o200
ECHOCTL = 0o1000
ECHOKE = 0o4000
IEXTEN = 0o100000

# c_cc indices
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN, VSWTC = 0, 1, 2, 3, 4, 5, 6, 7
VSTART, VSTOP, VSUSP, VEOL, VREPRINT, VDISCARD, VWERASE, VLNEXT, VEOL2 = 8, 9, 10, 11, 12, 13, 14, 15, 16

# Linux's defaults for a pty's replica (tty_std_termios with the pts driver's c_cflag).
DEFAULT_IFLAG = ICRNL | IXON
DEFAULT_OFLAG = OPOST | ONLCR
DEFAULT_CFLAG = B38400 | CS8 | CREAD
DEFAULT_LFLAG = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
DEFAULT_CC = b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00\x00\x00"

# TCFLSH arguments
TCIFLUSH, TCOFLUSH, TCIOFLUSH = 0, 1, 2
# TCXONC arguments: suspend or restart output, send VSTOP or VSTART
TCOOFF, TCOON, TCIOFF, TCION = 0, 1, 2, 3

# Device numbers: /dev/tty, /dev/console, /dev/ptmx, and the major of devpts's replicas.
TTYAUX_MAJOR = 5
TTY_MINOR = 0
CONSOLE_MINOR = 1
PTMX_MINOR = 2
PTS_MAJOR = 136
DEVPTS_SUPER_MAGIC = 0x1CD1
