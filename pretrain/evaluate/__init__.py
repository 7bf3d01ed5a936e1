"""Downstream evaluation on KLUE: `python -m pretrain.evaluate MODEL... --task ... --data ... --output_dir ...`.

    tasks.py     the tasks as text-to-text: prefixes, label sets, lengths; records -> examples
    sources.py   where --data points: KLUE's release files, a datasets directory, the hub
    finetune.py  fine-tuning and greedy decoding, on one device or data-parallel
    distributed.py  the launcher's ranks: process group, DDP, gathering predictions
    metrics.py   KLUE's metrics on generated text
    models.py    what a MODEL argument names: HF directory, run directory, hub id
    report.py    results.json and the side-by-side results.md
    cli.py       the command
"""
