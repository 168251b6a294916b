"""Copy a trained run's exported model into the package, with its model card.

    python scripts/ship_model.py /work/runs/refiner refiner --card docs/cards/refiner.md
    python scripts/ship_model.py /work/runs/segmenter occlusion --card docs/cards/occlusion.md

Copies ``RUN/model.json`` and the ONNX file it names into ``src/masquerade/data/models/NAME/``, checks the
file against the sha256 in ``model.json``, writes ``MODEL_CARD.md`` there (the ``--card`` text, written by
hand: data, licence, metrics, with the training facts of ``model.json`` appended: steps, hardware, time,
parameters, sha256) and prints the sha256 for ``masquerade/models.py``'s registry entry. Refuses a model
over 20 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 20 * 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="the run folder (holds model.json and the ONNX file)")
    ap.add_argument("name", help="the folder under src/masquerade/data/models/")
    ap.add_argument("--card", type=Path, required=True, help="the hand-written part of the model card")
    args = ap.parse_args()
    meta = json.loads((args.run / "model.json").read_text())
    onnx = args.run / meta["onnx"]
    data = onnx.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != meta["sha256"]:
        raise SystemExit(f"{onnx}: sha256 {sha} does not match model.json")
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{onnx}: {len(data) / 2**20:.1f} MiB is over the 20 MB a shipped model may take")
    dest = ROOT / "src/masquerade/data/models" / args.name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx, dest / meta["onnx"])
    (dest / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    t = meta.get("trained", {})
    facts = [
        "",
        "## Training facts (from model.json)",
        "",
        f"- format `{meta['format']}` v{meta['version']}, {meta['resolution']} px crops "
        f"(`{meta.get('template')}` template)",
        f"- {meta['steps']} steps, {t.get('seconds', 0) / 3600:.2f} h of training on `{t.get('device')}` "
        f"(torch {t.get('torch')})",
        f"- {meta['parameters']:,} parameters; `{meta['onnx']}` is {len(data) / 2**20:.2f} MiB",
        f"- sha256 `{sha}` (checked at load, and by `masquerade models --verify`)",
        f"- data: `{json.dumps(meta.get('data'))}`",
    ]
    init = meta.get("config", {}).get("init")
    if init:  # train refiner --init: the steps above come on top of that model's
        facts.append(f"- started from the weights of `{init}` (`--init`; the steps above come on top)")
    facts.append("")
    (dest / "MODEL_CARD.md").write_text(args.card.read_text().rstrip("\n") + "\n" + "\n".join(facts))
    print(f"{dest}: {meta['onnx']} sha256 {sha}")


if __name__ == "__main__":
    main()
