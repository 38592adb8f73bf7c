"""The shipped Keras catalog must match the installed Keras."""

import json

import keras  # noqa: E402
import pytest

from nnflow import catalog


def test_shipped_catalog_matches_installed_keras():
    from nnflow.catalog_build import build_catalog

    fresh = build_catalog()
    shipped = catalog.load_catalog()
    assert fresh["keras_version"] == shipped["keras_version"], (
        f"Keras {keras.__version__} is installed but the catalog was made from {shipped['keras_version']}; "
        "run `python -m nnflow.catalog_build`."
    )
    for kind in fresh["kinds"]:
        assert json.dumps(fresh["kinds"][kind], sort_keys=True) == json.dumps(shipped["kinds"][kind], sort_keys=True), (
            f"the {kind} catalog differs from Keras; run `python -m nnflow.catalog_build`."
        )


@pytest.mark.parametrize(
    "kind, module",
    [
        ("layer", keras.layers),
        ("optimizer", keras.optimizers),
        ("callback", keras.callbacks),
        ("loss", keras.losses),
        ("metric", keras.metrics),
    ],
)
def test_every_catalog_class_exists_in_keras(kind, module):
    for name in catalog.load_catalog()["kinds"][kind]["objects"]:
        assert hasattr(module, name), f"{module.__name__}.{name}"


def test_refused_names_are_real_keras_names():
    for name in catalog.load_catalog()["kinds"]["layer"]["refused"]:
        assert hasattr(keras.layers, name), name


def test_lookup_without_keras_semantics():
    assert catalog.lookup("optimizer", "adam").target == "Adam"
    assert catalog.lookup("loss", "mse").is_class is False
    assert catalog.lookup("layer", "Dense").positional_names[0] == "units"
    with pytest.raises(catalog.UnknownName, match="not allowed"):
        catalog.lookup("layer", "Lambda")
