"""defaultrisk: nightly batch scoring of customers' probability of default on Apache Spark."""

from setuptools import find_packages, setup

setup(
    name="defaultrisk",
    version="0.1.0",
    description="Nightly batch scoring of customers' probability of default on Apache Spark",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    python_requires=">=3.11",
    install_requires=[
        "numpy>=1.26,<3",
        "pandas>=2.2,<3",
        "pyarrow>=18",
        "xgboost-cpu>=3.0,<4",
        "scikit-learn>=1.6",
        "imbalanced-learn>=0.13",
        "matplotlib>=3.8",
    ],
    extras_require={
        "spark": ["pyspark>=4.0,<5"],
        "serve": ["pyspark>=4.0,<5", "fastapi>=0.115", "uvicorn>=0.30", "httpx>=0.27", "threadpoolctl>=3"],
        "test": ["pyspark>=4.0,<5", "pytest>=8", "chispa>=0.10"],
        "dev": ["pyspark>=4.0,<5", "pytest>=8", "chispa>=0.10", "ruff>=0.6"],
    },
)
