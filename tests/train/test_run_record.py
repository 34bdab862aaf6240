"""metrics.json as a type (train/run_record.py): the same JSON, key for key and in order, as
the dict run.py wrote before it; "result" only on the process that saved the result."""

import json

from together_llm.train.run_record import RunRecord

COMMON = {
    "run_id": "sounds-20250501-100000",
    "stage": "classify",
    "method": "lora",
    "base": "tiny",
    "data": "sounds",
    "steps": 10,
    "train_loss": 0.5,
    "eval_loss": None,
    "tokens": 1234,
    "seconds": 1.5,
    "tokens_per_s": 822.6666666666666,
    "examples": 12,
    "eval_examples": 0,
    "processes": 1,
}
TRAINER = {  # the loop trainer's Outcome.extra for a classifier
    "eval_accuracy": 0.75,
    "labels": ["farm", "pet"],
    "label_tokens": 12,
    "packing": "auto",
    "sharded": False,
    "precision": "fp32",
    "preprocessing": {"train": {"kept": 12}, "eval": {"kept": 0}},
}


def test_metrics_json_is_what_the_dict_was():
    record = RunRecord(**COMMON, extra=dict(TRAINER))
    # run.py's dict before the type: the common figures, **outcome.extra, then "result"
    assert json.dumps(record.to_dict()) == json.dumps({**COMMON, **TRAINER})
    assert record.labels == ["farm", "pet"]
    record.result = "/home/adapters/sounds"
    saved = {**COMMON, **TRAINER, "result": "/home/adapters/sounds"}
    assert json.dumps(record.to_dict()) == json.dumps(saved)
    assert RunRecord.from_dict(json.loads(json.dumps(saved))) == record
    assert RunRecord(**COMMON).labels is None
