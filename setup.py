"""defaultrisk: nightly batch scoring of customers' probability of default on Apache Spark.

The version comes from git (setuptools-scm, see pyproject.toml). The checkout's `conf/` is the one
source of the default configuration: the build copies it into the package as `defaultrisk/conf/`, which
an installed package reads when there is no checkout around it.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# XGBoost's CPU-only wheel where it is published (Linux, Windows); macOS has only the full one.
XGBOOST = ['xgboost-cpu>=3.0,<4; sys_platform != "darwin"', 'xgboost>=3.0,<4; sys_platform == "darwin"']
SPARK = ["pyspark>=4.0,<5"]
TEST = [*SPARK, "pytest>=8", "chispa>=0.10", "duckdb>=1.1"]
# uvicorn runs on its C HTTP parser and event loop when they are installed (a third of the CPU per request).
SERVE = [
    "fastapi>=0.115",
    "uvicorn>=0.30",
    "httptools>=0.6",
    'uvloop>=0.19; sys_platform != "win32"',
    "httpx>=0.27",
    "threadpoolctl>=3",
]

# The registry: MLflow's client, model registry and pyfunc flavour, and its SQLite store for the local
# registry (a tracking server is the team's own). Without it the jobs run as before; a `models:/` URI
# ends with exit 2 naming this extra.
MLFLOW = ["mlflow-skinny>=3.10,<4", "sqlalchemy>=2", "alembic>=1.13"]


class BuildWithConf(build_py):
    """Copy `conf/` (TOML settings, Spark properties, log4j2 configuration) into the built package."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "defaultrisk" / "conf"
        # Afresh each build: a build folder left from an earlier build must not ship a removed file.
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in sorted((HERE / "conf").iterdir()):
            if path.is_file():
                shutil.copy2(path, target / path.name)


setup(
    name="defaultrisk",
    description="Nightly batch scoring of customers' probability of default on Apache Spark",
    package_dir={"": "lib"},
    # The sample-data generator is for development and tests, not part of the product.
    packages=find_packages("lib", exclude=["sampledata", "sampledata.*"]),
    python_requires=">=3.11",
    install_requires=[
        "numpy>=1.26,<3",
        "pandas>=2.2,<3",
        "pyarrow>=18",
        *XGBOOST,
        "scikit-learn>=1.6",
        "imbalanced-learn>=0.13",
        "matplotlib>=3.8",
        "numba>=0.68",
    ],
    extras_require={
        "spark": SPARK,
        "serve": [*SPARK, *SERVE],
        "mlflow": MLFLOW,
        "test": TEST,
        "dev": [*TEST, "ruff>=0.6"],
    },
    entry_points={"console_scripts": ["defaultrisk = defaultrisk.cli:main"]},
    cmdclass={"build_py": BuildWithConf},
)
