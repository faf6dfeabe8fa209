"""Tests of ctrflow.dense (a package, so module names like test_optimizers do not clash with other folders)."""
