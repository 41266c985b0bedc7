"""shared.authoring: the worker author's names, gathered in one light module."""

from __future__ import annotations

from shared import authoring, errors, serving, validation


def test_every_listed_name_is_the_object_its_own_module_defines():
    assert all(hasattr(authoring, name) for name in authoring.__all__)
    assert authoring.serve is serving.serve and authoring.parse is validation.parse
    assert authoring.BadInput is errors.BadInput


def test_the_runtime_is_not_part_of_the_author_api():
    assert not {"guard", "classify", "start", "run_worker", "coalesced", "configure"} & set(authoring.__all__)

