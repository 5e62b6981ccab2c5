"""Build hook: compiles csrc/ into flux_journal._core through cffi.

Everything else about the package is declared in pyproject.toml.
"""

from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
