"""The Python node classes declare what the native schemas (and so wan-run) declare."""

import glob
import json
import os
import subprocess

from conftest import MODELS_DIR, REPO_ROOT


def contract_nodes():
    """{node: (input names, output types or None for an output node)} from docs/NODES.md."""
    with open(os.path.join(REPO_ROOT, "docs", "NODES.md")) as f:
        text = f.read()
    # The pack's own nodes; the ComfyUI core nodes' table ("### ComfyUI core nodes") follows.
    table = text.split("## Nodes", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    nodes = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.replace("\\|", "/").strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("node", "") or cells[0].startswith("---"):
            continue
        name, inputs, outputs = cells
        # Input names are what is left once parenthesised notes are dropped.
        flat, depth = "", 0
        for ch in inputs:
            depth += ch == "("
            if depth == 0:
                flat += ch
            depth -= ch == ")"
        names = [n.strip() for n in flat.split(",") if n.strip()]
        types = None if outputs.startswith("(output node)") else [
            t.strip() for t in outputs.split(",")]
        nodes[name] = (names, types)
    assert len(nodes) >= 12, "could not read the node table of docs/NODES.md"
    return nodes


def declared_inputs(cls):
    types = cls.INPUT_TYPES()
    out = {}
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            out[name] = (section, list(spec))
    return out


def test_every_contract_node_is_a_class_with_its_inputs_and_outputs(pkg):
    for name, (inputs, outputs) in contract_nodes().items():
        assert name in pkg.NODE_CLASS_MAPPINGS, name + " is missing"
        cls = pkg.NODE_CLASS_MAPPINGS[name]
        declared = declared_inputs(cls)
        for input_name in inputs:
            assert input_name in declared, "%s has no input %s" % (name, input_name)
        if outputs is None:
            assert cls.OUTPUT_NODE, name + " should be an output node"
        else:
            assert list(cls.RETURN_TYPES) == outputs, name
        assert cls.FUNCTION == "execute" and callable(getattr(cls, cls.FUNCTION))
        assert cls.CATEGORY.startswith("wan")
        assert name in pkg.NODE_DISPLAY_NAME_MAPPINGS


def check_classes_match_object_info(pkg, info):
    assert set(info) <= set(pkg.NODE_CLASS_MAPPINGS)
    for name, node in info.items():
        cls = pkg.NODE_CLASS_MAPPINGS[name]
        types = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            expected = node["input"].get(section, {})
            got = {k: list(v) for k, v in types.get(section, {}).items()}
            assert got == expected, "%s %s inputs differ" % (name, section)
            assert list(types.get(section, {})) == node.get("input_order", {}).get(section, [])
        assert list(cls.RETURN_TYPES) == node["output"], name
        assert [n or t for n, t in zip(node["output_name"], node["output"])] == list(
            cls.RETURN_NAMES)
        assert cls.OUTPUT_NODE == node["output_node"], name
        assert cls.CATEGORY == node["category"], name
        assert cls.DESCRIPTION == node["description"], name
        assert pkg.NODE_DISPLAY_NAME_MAPPINGS[name] == node["display_name"], name
        assert types["hidden"]["unique_id"] == "UNIQUE_ID"


def test_classes_match_the_module_object_info(pkg):
    info = json.loads(pkg._native.object_info(MODELS_DIR))
    check_classes_match_object_info(pkg, info)


def test_classes_match_wan_run_object_info(pkg, wan_run):
    proc = subprocess.run([wan_run, "--object-info", "--models", MODELS_DIR],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert set(info) == set(json.loads(pkg._native.object_info(MODELS_DIR)))
    check_classes_match_object_info(pkg, info)


def test_model_combos_list_the_tiny_models(pkg):
    t5 = pkg.NODE_CLASS_MAPPINGS["LoadT5"].INPUT_TYPES()["required"]
    assert "t5_tiny_encoder.pth" in t5["model_name"][0]
    assert t5["tokenizer"][0][0] == "from_checkpoint" and "wan_tiny" in t5["tokenizer"][0]
    dit = pkg.NODE_CLASS_MAPPINGS["LoadDiT"].INPUT_TYPES()["required"]["model_name"][0]
    assert "dit_t2v_tiny.safetensors" in dit and "dit_i2v_tiny.safetensors" in dit
    assert pkg._MODEL_FOLDERS["LoadDiT"] == {"model_name": "diffusion_models"}
    assert pkg._MODEL_FOLDERS["LoadT5"] == {"model_name": "text_encoders",
                                            "tokenizer": "tokenizers"}


def is_widget(spec):
    """Combos and INT/FLOAT/STRING/BOOLEAN take widget values; other types are sockets."""
    config = spec[1] if len(spec) > 1 else {}
    if config.get("forceInput"):
        return False
    return isinstance(spec[0], list) or spec[0] in ("INT", "FLOAT", "STRING", "BOOLEAN")


FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


def test_shipped_workflows_use_only_declared_inputs(pkg):
    files = sorted(glob.glob(os.path.join(REPO_ROOT, "workflows", "*", "*.json")))
    assert files, "no workflows under workflows/*/*.json"
    for path in files:
        with open(path) as f:
            workflow = json.load(f)
        where = os.path.relpath(path, REPO_ROOT)
        if "nodes" in workflow and "links" in workflow:
            for node in workflow["nodes"]:
                kind = node["type"]
                if kind in FRONTEND_ONLY:
                    continue
                assert kind in pkg.NODE_CLASS_MAPPINGS, "%s: unknown node %s" % (where, kind)
                declared = declared_inputs(pkg.NODE_CLASS_MAPPINGS[kind])
                for slot in node.get("inputs", []):
                    assert slot["name"] in declared, "%s: %s (node %s) has no input %s" % (
                        where, kind, node["id"], slot["name"])
                widgets = [n for n, (_, spec) in declared.items() if is_widget(spec)]
                # The seed's control_after_generate and an upload button each store a value.
                extra = sum(1 for n in widgets
                            if len(declared[n][1]) > 1
                            and declared[n][1][1].get("control_after_generate"))
                extra += sum(1 for n in widgets
                             if len(declared[n][1]) > 1
                             and (declared[n][1][1].get("image_upload")
                                  or declared[n][1][1].get("video_upload")))
                values = node.get("widgets_values", [])
                assert isinstance(values, list), "%s: node %s widgets_values" % (where, node["id"])
                assert len(values) == len(widgets) + extra, (
                    "%s: %s (node %s) has %d widget values for %d widgets (+%d seed controls)"
                    % (where, kind, node["id"], len(values), len(widgets), extra))
        else:
            for node_id, node in workflow.items():
                kind = node["class_type"]
                assert kind in pkg.NODE_CLASS_MAPPINGS, "%s: unknown node %s" % (where, kind)
                declared = declared_inputs(pkg.NODE_CLASS_MAPPINGS[kind])
                for name in node["inputs"]:
                    assert name in declared, "%s: %s (node %s) has no input %s" % (
                        where, kind, node_id, name)
