"""The reference engine: the compiled rules run by plain Great Expectations on a pandas DataFrame.

An ephemeral context per validation (cheap, and safe in parallel runs), progress bars off, the
SUMMARY result format. Its output is the validation result as GX serialises it
(`ExpectationSuiteValidationResult.to_json_dict()`), with the results put back in the suite's
order (GX returns them in the order its metric graph resolves them). The fast engine must
produce the same `success` and `result` for every expectation; tests check it.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from dinum_pipelines.lib.quality.rules import Rule

RESULT_FORMAT = "SUMMARY"


def _quiet_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def gx_expectation(rule: Rule, index: int):
    """The GX Expectation object of a rule (custom ones registered by gx_custom)."""
    from great_expectations.expectations.registry import get_expectation_impl

    from dinum_pipelines.lib.quality import gx_custom  # noqa: F401  (registers the custom expectations)

    config = rule.config()
    return get_expectation_impl(rule.type)(**config["kwargs"], meta={**config["meta"], "index": index}, severity=rule.severity)


def validate_with_gx(frame: pd.DataFrame, suite_name: str, rules: list[Rule]) -> dict[str, Any]:
    """Run `rules` on `frame` in a fresh ephemeral GX context; the result as a JSON-ready dict."""
    import great_expectations as gx

    context = _quiet_context()
    batch = (
        context.data_sources.add_pandas("dinum")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole table")
    )
    expectations = [gx_expectation(rule, index) for index, rule in enumerate(rules)]
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    validation = gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    result = validation.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT).to_json_dict()
    result["results"].sort(key=lambda item: item["expectation_config"]["meta"]["index"])
    return result
