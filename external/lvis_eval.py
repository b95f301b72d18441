"""LVIS detections scored by the official LVIS API (the `lvis` package, `LVISEval`), segm and bbox.

    python external/lvis_eval.py --annotations lvis_v0.5_val.json \
        --results lvis_instances_results.json --out scores.json

Table 4 of the paper (Mask R-CNN on LVIS v0.5) reports APm (mask AP), APf, APc, APr (mask AP on
the frequent, common and rare categories) and APb (box AP). Every row of it is scored here, by
one evaluator, whatever code wrote the detections: `--results` is a file in the LVIS (COCO)
results format, as detectron2's `LVISEvaluator` writes it (`inference/lvis_instances_results.json`):
a list of `{image_id, category_id, score, bbox: [x, y, w, h], segmentation: RLE or polygons}`.
At most 300 detections per image are kept (the LVIS API's default, as the official evaluation).

`--out` gets `{"segm": {...}, "bbox": {...}, "table4": {...}, "evaluator": {...}}`: every number
`LVISEval.get_results()` gives for each IoU type (AP, AP50, AP75, APs, APm, APl: LVIS's own APm is
*medium-object* AP, APr, APc, APf, AR@300, ...), Table 4's five columns under their paper names,
and the versions of `lvis`, `pycocotools` and `numpy`. A malformed results file is refused, naming the file
and the entry, with exit status 2.
"""

import argparse
import importlib.metadata
import json
import logging
import math
import sys


def refuse(message):
    print(f"lvis_eval.py: {message}", file=sys.stderr)
    sys.exit(2)


def checked_results(path, annotations, segm):
    """The results file's detections, each checked against the annotation file's images and
    categories."""
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        refuse(f"`{path}`: {err}")
    if not isinstance(results, list):
        refuse(f"`{path}`: not a list of detections")
    images = {image["id"] for image in annotations["images"]}
    categories = {category["id"] for category in annotations["categories"]}
    for i, d in enumerate(results):
        where = f"`{path}`, detection {i}"
        if not isinstance(d, dict):
            refuse(f"{where}: not an object")
        for field in ["image_id", "category_id", "score", "bbox"] + (["segmentation"] if segm else []):
            if field not in d:
                refuse(f"{where}: no `{field}`")
        if d["image_id"] not in images:
            refuse(f"{where}: image {d['image_id']} is not in the annotation file")
        if d["category_id"] not in categories:
            refuse(f"{where}: category {d['category_id']} is not in the annotation file")
        if not (isinstance(d["score"], (int, float)) and math.isfinite(d["score"])):
            refuse(f"{where}: score {d['score']!r} is not a finite number")
        box = d["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            refuse(f"{where}: bbox {box!r} is not [x, y, width, height]")
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--annotations", required=True, help="LVIS annotation file (lvis_v0.5_val.json)")
    parser.add_argument("--results", required=True, help="detections in the LVIS results format")
    parser.add_argument("--out", required=True)
    parser.add_argument("--iou-types", default="segm,bbox")
    parser.add_argument("--max-dets", type=int, default=300)
    args = parser.parse_args()
    # The API logs its progress at INFO; only warnings and errors reach stderr.
    logging.basicConfig(level=logging.WARNING)
    # lvis 0.5.3 (the last release on PyPI) still writes `np.float`, an alias of the builtin
    # `float` that numpy 1.24 removed; restoring the alias changes no computation.
    import numpy as np

    if not hasattr(np, "float"):
        np.float = float
    from lvis import LVIS, LVISEval, LVISResults

    iou_types = args.iou_types.split(",")
    for iou_type in iou_types:
        if iou_type not in ("segm", "bbox"):
            refuse(f"--iou-types: `{iou_type}` is not segm or bbox")
    gt = LVIS(args.annotations)
    results = checked_results(args.results, gt.dataset, "segm" in iou_types)
    if not results:
        refuse(f"`{args.results}`: no detections")
    scores = {}
    for iou_type in iou_types:
        # LVISResults sets each detection's area (of its box, or of its mask where it has no box)
        # on its own copy. For masks the box is left out, as detectron2's LVISEvaluator does, so
        # that the size ranges (APs, LVIS's own APm and APl) go by mask area.
        copies = json.loads(json.dumps(results))
        if iou_type == "segm":
            import pycocotools.mask as mask_utils

            for d in copies:
                d.pop("bbox", None)
                if isinstance(d["segmentation"], list):
                    # Polygons (detectron2 writes RLE): as one RLE on the image's grid.
                    image = gt.imgs[d["image_id"]]
                    parts = mask_utils.frPyObjects(d["segmentation"], image["height"], image["width"])
                    d["segmentation"] = mask_utils.merge(parts)
        dt = LVISResults(gt, copies, max_dets=args.max_dets)
        evaluation = LVISEval(gt, dt, iou_type)
        evaluation.params.max_dets = args.max_dets
        evaluation.run()
        scores[iou_type] = {k: float(v) for k, v in evaluation.get_results().items()}
    out = dict(scores)
    if "segm" in scores and "bbox" in scores:
        segm = scores["segm"]
        out["table4"] = {"APm": segm["AP"], "APf": segm["APf"], "APc": segm["APc"], "APr": segm["APr"],
                         "APb": scores["bbox"]["AP"]}
    out["evaluator"] = {name: importlib.metadata.version(name) for name in ["lvis", "pycocotools", "numpy"]}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
