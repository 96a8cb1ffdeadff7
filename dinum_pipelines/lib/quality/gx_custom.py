"""The project's custom Great Expectations expectations: French formats and personal data.

Importing this module registers them with GX (GX registers every Expectation subclass and
metric provider when its class is defined). Their metrics run the *reference* checks of
`frformats.py` and `personal_data.py` one value at a time (frformat, python-stdnum), which is
what makes plain GX the reference implementation the fast engine is compared with.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)

from dinum_pipelines.lib.quality import frformats, personal_data

PAIR_DOMAIN_KEYS = ("batch_id", "table", "column_A", "column_B", "ignore_row_if")


class ColumnValuesValidFrenchFormat(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_french_format"
    condition_value_keys = ("format", "year")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, format, year=None, **kwargs):
        return column.map(frformats.reference_is_valid(format, year)).astype(bool)


class ExpectColumnValuesToBeValidFrenchFormat(ColumnMapExpectation):
    """Values are valid for a French format of frformat (INSEE code of a COG year, postal code, SIRET...)."""

    format: str
    year: str | None = None

    map_metric = "column_values.valid_french_format"
    success_keys = ("format", "year", "mostly")
    args_keys = ("column", "format", "year")


class ColumnValuesNotPersonalData(ColumnMapMetricProvider):
    condition_metric_name = "column_values.not_personal_data"
    condition_value_keys = ("kinds",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, kinds, **kwargs):
        return ~column.map(lambda value: personal_data.reference_is_personal(value, kinds)).astype(bool)


class ExpectColumnValuesToNotBePersonalData(ColumnMapExpectation):
    """No value is personal data of the given kinds (a person's email or mobile, a NIR, an IBAN)."""

    kinds: list[str]

    map_metric = "column_values.not_personal_data"
    success_keys = ("kinds", "mostly")
    args_keys = ("column", "kinds")


class ColumnPairValuesInFrance(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.in_france"
    condition_domain_keys = PAIR_DOMAIN_KEYS

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        inside = [frformats.reference_in_france(x, y) for x, y in zip(column_A, column_B)]
        return pd.Series(np.array(inside, dtype=bool), index=column_A.index)


class ExpectColumnPairValuesToBeInFrance(ColumnPairMapExpectation):
    """(longitude, latitude) pairs fall inside France, overseas départements included (frformat's boxes)."""

    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "either_value_is_missing"

    map_metric = "column_pair_values.in_france"
    success_keys: ClassVar[tuple[str, ...]] = ("ignore_row_if", "mostly")
    args_keys = ("column_A", "column_B")


class ColumnPairValuesNotAPerson(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.not_name_and_birth_date"
    condition_domain_keys = PAIR_DOMAIN_KEYS

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        # Every row that has both a name and a birth date identifies a person.
        return pd.Series(np.zeros(len(column_A), dtype=bool), index=column_A.index)


class ExpectColumnPairValuesToNotBeNameAndBirthDate(ColumnPairMapExpectation):
    """No row holds both a person's name and a birth date (the pair identifies the person)."""

    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "either_value_is_missing"

    map_metric = "column_pair_values.not_name_and_birth_date"
    success_keys: ClassVar[tuple[str, ...]] = ("ignore_row_if", "mostly")
    args_keys = ("column_A", "column_B")
