"""Plans: the same analyses, prompts and scores as `latentlab plan` on AsyncHow records
(tests/fixtures/asynchow), and bad input named."""

import json

import pytest

import latentlab
from conftest import FIXTURES

RECORDS = (FIXTURES / "asynchow" / "async_benchmark.jsonl").read_text().splitlines()[:25]


@pytest.fixture
def records(tmp_path):
    path = tmp_path / "plans.jsonl"
    path.write_text("\n".join(RECORDS) + "\n")
    return path


def test_analysis_prompt_and_score_equal_the_cli(cli, records):
    plans = latentlab.parse_plans("\n".join(RECORDS))
    assert len(plans) == len(RECORDS)
    optimal = cli.lines("plan", "optimal", "--schedule", records)
    for plan, theirs in zip(plans, optimal):
        ours = plan.analyze()
        for key in ("title", "optimal_seconds", "sequential_seconds", "speedup", "critical_path",
                    "optimal_text", "steps"):
            assert ours[key] == theirs[key], key
        assert len(plan.steps) == theirs["n_steps"]
    prompts = cli.lines("plan", "prompt", "--encoding", "edge-list", "--cot", "--template", "3", records)
    for plan, theirs in zip(plans, prompts):
        assert plan.prompt(encoding="edge-list", chain_of_thought=True, ordering_template=3) == theirs["prompt"]
    answer = 'The shortest time is "2 hours".'
    scores = cli.lines("plan", "score", "--answer", answer, records)
    for plan, theirs in zip(plans, scores):
        ours = plan.score(answer)
        assert {**ours, "title": plan.title} == theirs


def test_one_plan_round_trips_through_both_formats():
    plan = latentlab.Plan.from_json(RECORDS[0])
    again = latentlab.Plan.from_json(plan.to_json())
    assert again.analyze() == plan.analyze()
    assert latentlab.Plan.from_json(plan.to_asynchow()).analyze() == plan.analyze()
    assert all(len(pair) == 2 for pair in plan.constraints)


def test_duration_helpers():
    assert latentlab.parse_duration("1 hour 30 minutes") == (5400.0, 5400.0)
    assert latentlab.format_seconds(5400) == "1 h 30 min"
    assert "edge-list" in latentlab.graph_encodings()
    assert len(latentlab.ordering_templates()) == 10


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: latentlab.Plan.from_json("\n".join(RECORDS[:2])), ["expected one plan, found 2"]),
        (lambda: latentlab.Plan.from_json("{"), []),
        (lambda: latentlab.Plan.from_json(json.dumps({"title": "t", "steps": []})), []),
        (lambda: latentlab.Plan.from_json(RECORDS[0]).prompt(encoding="tree"), ['"tree"']),
        (lambda: latentlab.Plan.from_json(RECORDS[0]).prompt(ordering_template=10), ["10"]),
        (lambda: latentlab.parse_duration("soon"), ['"soon"']),
    ],
)
def test_bad_input_is_named(call, words):
    with pytest.raises(ValueError) as caught:
        call()
    assert str(caught.value)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
