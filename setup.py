"""Build hooks: compiles the ptrace platform extension with cffi (API mode) and
generates the protobuf modules of ``ringfence.proto`` from ``proto/**/*.proto``
with grpcio-tools (``build_py`` below)."""
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_SRC = HERE / "proto"
# proto/ is installed as ringfence.proto; .proto files import each other by
# this prefix ("ringfence/proto/containerd/types/mount.proto"), so protoc
# writes imports such as ``from ringfence.proto.containerd.types import ...``.
PROTO_PREFIX = Path("ringfence") / "proto"


class BuildPyWithProtos(build_py):
    """build_py that also runs grpc_tools.protoc over proto/ into build_lib."""

    def run(self):
        super().run()
        self.generate_protos()

    def generate_protos(self):
        from grpc_tools import protoc  # a build requirement (pyproject.toml)
        import grpc_tools

        sources = sorted(p.relative_to(PROTO_SRC) for p in PROTO_SRC.rglob("*.proto"))
        if not sources:
            return
        well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
        out = Path(self.build_lib)
        with tempfile.TemporaryDirectory(prefix="ringfence-protos-") as stage:
            staged = Path(stage) / PROTO_PREFIX
            for rel in sources:
                (staged / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(PROTO_SRC / rel, staged / rel)
            args = ["grpc_tools.protoc", f"-I{stage}", f"-I{well_known}",
                    f"--python_out={out}", f"--pyi_out={out}",
                    *[str(PROTO_PREFIX / rel) for rel in sources]]
            if protoc.main(args) != 0:
                raise RuntimeError("grpc_tools.protoc failed on proto/ (see its messages above)")
        # Every directory of generated code becomes a regular package.
        root = out / PROTO_PREFIX
        for rel in sources:
            d = (root / rel).parent
            while d != root:
                init = d / "__init__.py"
                if not init.exists():
                    init.write_text('"""Generated protobuf modules (from proto/)."""\n')
                d = d.parent
        self.announce(f"generated protobuf modules for {len(sources)} .proto files", level=2)


setup(
    cffi_modules=["sentry/platform/ptrace/build.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithProtos},
)
