from setuptools import setup

setup(
    name="pynn_ttfs",
    version="0.1.0",
    description=(
        "PyNN backend for time-to-first-spike deep learning with exact gradients, "
        "on an exact software substrate or an emulated BrainScaleS-2 chip"
    ),
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=[
        "pynn_ttfs",
        "pynn_ttfs.engine",
        "pynn_ttfs.training",
        "pynn_ttfs.backends",
        "pynn_ttfs.backends.software",
        "pynn_ttfs.backends.bss2",
    ],
    package_dir={"pynn_ttfs.backends": "backends"},
    install_requires=[
        "pynn==0.13.0",
        "neo>=0.13",
        "quantities",
        "lazyarray",
        "numpy",
        "torch==2.13.0",
        "numba>=0.60",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "scipy", "mpmath", "nest-simulator==3.10.0", "nixio"],
    },
    entry_points={"console_scripts": ["pynn-ttfs=pynn_ttfs.training.cli:main"]},
)
