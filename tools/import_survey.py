"""Which torchvision (and timm) models `netspec import` round-trips weight for weight:
import -> check -> build -> the reference's state_dict loads strict=True -> eval outputs
within 1e-5 at one random input.  No weights are downloaded (weights=None / pretrained=False).

    python tools/import_survey.py classification|segmentation|video|timm [--json FILE]

Prints one line per model (ok, or the first reason it is not) and the count."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import torch

# inputs that every model of the family accepts; the smallest that keep each model valid
INPUTS = {
    "classification": (3, 224, 224),
    "segmentation": (3, 128, 128),
    "video": (3, 8, 112, 112),
    "timm": (3, 224, 224),
}
SPECIAL_INPUTS = {"inception_v3": (3, 299, 299), "googlenet": (3, 224, 224),
                  "s3d": (3, 16, 224, 224), "mvit_v1_b": (3, 16, 224, 224),
                  "mvit_v2_s": (3, 16, 224, 224), "swin3d_t": (3, 8, 224, 224),
                  "swin3d_s": (3, 8, 224, 224), "swin3d_b": (3, 8, 224, 224)}
# a sample spread over timm's families (pretrained=False, never weights)
TIMM_SAMPLE = """resnet18 resnet50 resnext50_32x4d seresnet18 efficientnet_b0 efficientnet_lite0
mobilenetv3_small_100 mobilenetv3_large_100 mnasnet_100 ghostnet_100 convnext_atto
convnext_tiny regnetx_002 regnety_002 densenet121 inception_v3 xception41 vit_tiny_patch16_224
vit_small_patch16_224 deit_tiny_patch16_224 swin_tiny_patch4_window7_224 pvt_v2_b0
poolformer_s12 mixer_s16_224 levit_128s maxvit_tiny_rw_224 resnetv2_50 dla34 dpn68 hrnet_w18_small
cspresnet50 darknet53 rexnet_100 tinynet_a lcnet_050 mobilevit_xxs edgenext_xx_small
efficientformer_l1 coatnet_0_rw_224 beit_base_patch16_224 cait_xxs24_224 crossvit_tiny_240
twins_svt_small tnt_s_patch16_224 gmlp_ti16_224 resmlp_12_224 nfnet_l0 repvgg_a0 vgg11
res2net50_14w_8s selecsls42b hardcorenas_a fbnetc_100 spnasnet_100""".split()


def reference(family: str, name: str) -> torch.nn.Module:
    if family == "timm":
        import timm

        return timm.create_model(name, pretrained=False)
    import torchvision.models as M

    module = {"classification": M, "segmentation": M.segmentation, "video": M.video}[family]
    kwargs = {"aux_loss": None} if family == "segmentation" else {}
    return M.get_model(name, weights=None, **kwargs) if module is M else \
        getattr(module, name)(weights=None, weights_backbone=None) \
        if family == "segmentation" else getattr(module, name)(weights=None)


def names(family: str) -> list[str]:
    if family == "timm":
        return TIMM_SAMPLE
    import torchvision.models as M

    module = {"classification": M, "segmentation": M.segmentation, "video": M.video}[family]
    return sorted(M.list_models(module=module))


def outputs(value):
    if isinstance(value, dict):
        return value["out"]
    if isinstance(value, (tuple, list)):
        return value[0]
    return value


def round_trip(family: str, name: str) -> str:
    """'ok', or the first reason the model does not round-trip."""
    import netspec
    from netspec.importer.fx import ImportProblem, dumps, model_to_spec
    from netspec.pipeline.imported import verify

    torch.manual_seed(0)
    try:
        model = reference(family, name).eval()
    except Exception as exc:
        return f"reference: {type(exc).__name__}: {exc}"[:200]
    shape = SPECIAL_INPUTS.get(name, INPUTS[family])
    try:
        imported = model_to_spec(model, shape)
        text = dumps(imported.data)
        result = verify(imported, text)
        built = netspec.build(result).eval()
        built.load_state_dict(model.state_dict(), strict=True)
        x = torch.randn(1, *shape)
        with torch.no_grad():
            difference = (outputs(built(x)) - outputs(model(x))).abs().max().item()
    except ImportProblem as exc:
        return f"import: {exc}"[:300]
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok" if difference <= 1e-5 else f"output differs by {difference:.2e}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=sorted(INPUTS))
    parser.add_argument("--json", help="write {model: result} here")
    parser.add_argument("--only", nargs="*", help="these models only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    found = {}
    for name in args.only or names(args.family):
        start = time.perf_counter()
        found[name] = round_trip(args.family, name)
        print(f"{name:32s} {time.perf_counter() - start:6.1f}s  {found[name]}", flush=True)
    ok = sum(v == "ok" for v in found.values())
    print(f"{args.family}: {ok}/{len(found)} round-trip weight for weight")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(found, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
