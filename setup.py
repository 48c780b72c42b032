"""Only here so that a wheel build compiles the C core (CFFI needs setup.py)."""

from setuptools import setup

setup(cffi_modules=["native/build.py:ffibuilder"])
