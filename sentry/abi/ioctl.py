"""Linux x86_64 ioctl request numbers and argument sizes."""

TCGETS = 0x5401
TIOCGPGRP = 0x540F
TIOCGWINSZ = 0x5413
FIONREAD = 0x541B

TERMIOS_SIZE = 36  # struct termios (kernel layout)
WINSIZE_SIZE = 8  # struct winsize
INT_SIZE = 4
# Generic descriptor ioctls.
FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIONBIO = 0x5421
