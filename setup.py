"""Build hook: compiles the ptrace platform extension with cffi (API mode)."""
from setuptools import setup

setup(cffi_modules=["sentry/platform/ptrace/build.py:ffibuilder"])
