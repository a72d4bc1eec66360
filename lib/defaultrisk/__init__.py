"""defaultrisk: nightly batch scoring of customers' probability of default on Apache Spark."""

__version__ = "0.1.0"
