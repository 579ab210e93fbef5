"""`--link xgmi`: the Infinity Fabric of AMD OAM modules can be named, and is refused elsewhere
(inference and training price the same link the rig would get by default)."""

from __future__ import annotations

import pytest

from cli_runner import run
from rigplan import InvalidValueError, UnsupportedError, estimate, load_catalog
from rigplan.speed.comm import LINKS, XGMI
from rigplan.training.speed import interconnect_for

CAT = load_catalog()


def test_xgmi_is_a_link_name():
    assert XGMI in LINKS


def test_naming_xgmi_on_oam_modules_is_their_default():
    named = estimate("llama-3.1-70b", "8x mi300x", engine="vllm", quant="fp8", link="xgmi").to_dict()
    default = estimate("llama-3.1-70b", "8x mi300x", engine="vllm", quant="fp8").to_dict()
    assert named["link"]["kind"] == default["link"]["kind"] == XGMI
    assert named["speed"]["decode_tokens_per_s"] == default["speed"]["decode_tokens_per_s"]


def test_xgmi_elsewhere_is_refused_with_the_reason():
    with pytest.raises(UnsupportedError, match="Infinity Fabric"):
        estimate("llama-3.1-70b", "8x h100-sxm", engine="vllm", quant="fp8", link="xgmi")


def test_training_prices_a_named_xgmi_as_the_default():
    oam = tuple([CAT.gpus["mi300x"]] * 8)
    assert interconnect_for(oam, "ib-ndr", 1, link="xgmi") == interconnect_for(oam, "ib-ndr", 1)
    with pytest.raises(InvalidValueError, match="xgmi"):
        interconnect_for(tuple([CAT.gpus["rtx-4090"]] * 4), "ib-ndr", 1, link="xgmi")


def test_cli_refuses_xgmi_on_nvidia_without_a_traceback(capsys):
    code, out, err = run(
        capsys, "estimate", "llama-3.1-70b", "--rig", "8x h100-sxm", "--engine", "vllm", "--link", "xgmi"
    )
    assert code == 2 and "Infinity Fabric" in err and "Traceback" not in err + out


def test_the_web_schema_takes_the_same_links():
    from typing import get_args

    from rigplan.web.schemas import LinkKind

    assert get_args(LinkKind) == LINKS
