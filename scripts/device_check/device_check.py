"""The one-shot device check (scripts/device_check.sh runs it; docs/gpu.md explains each part).

On the lent GPU machine it builds wan-native against that machine's torch, runs the CUDA tests,
then measures: the four t2v-1.3B offload configurations on an 11.49 GiB cap against the plan, the
placements that do not exist yet, the DiT forward against the official WanModel, and host-to-device
copy bandwidth. With --dry-run it takes the same code paths on a machine without a GPU: the
existing build folder, the virtual accelerator, tiny models and a few frames.

Writes under --out: device_check.json, device_check.md and cuda_device_tests.xml, after every part
(a run cut short still leaves what it measured).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30
MiB = 1 << 20
CONFIGS = ["baseline", "vae_cpu", "t5_cpu", "vae_cpu_t5_cpu"]
# Nodes of the shipped t2v workflows that write media files; the device build has no codecs, so
# the checked graphs end in SaveTensor of the decoded frames instead (same nodes before it).
MEDIA_OUTPUTS = {"CreateVideo", "SaveVideo", "PreviewImage", "SaveImage", "SaveAnimatedWEBP"}
BUILD_TARGETS = ["wan-run", "device_tests", "random_models", "dit_step_bench", "h2d_copy_bench"]


def log(part, message):
    print(f"device_check: [{part}] {message}", flush=True)


# No single command may take the whole device lease: a hung one fails its part, the rest run.
COMMAND_TIMEOUT_S = 300


def run(command, part, timeout=COMMAND_TIMEOUT_S, check=True, env=None):
    """Runs a command, echoing it; returns (returncode, stdout+stderr, seconds)."""
    log(part, "$ " + " ".join(str(c) for c in command))
    start = time.monotonic()
    result = subprocess.run([str(c) for c in command], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, env=env)
    seconds = time.monotonic() - start
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {result.returncode}:\n{output[-3000:]}")
    return result.returncode, output, seconds


class Check:
    def __init__(self, args):
        self.args = args
        self.dry = args.dry_run
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.build = Path(args.build_dir or ("build" if self.dry else "build-device"))
        if not self.build.is_absolute():
            self.build = ROOT / self.build
        self.work = Path(args.work or (self.build / "device_check_work"))
        self.bundle = ROOT / ".device_bundle"
        self.results = {"mode": "dry-run" if self.dry else "device", "parts": {},
                        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        self.object_info = None

    # ---- helpers ------------------------------------------------------------------------------

    def binary(self, name):
        for candidate in (self.build / name, self.build / "tests" / name,
                          self.build / "benchmarks" / name):
            if candidate.exists():
                return candidate
        raise RuntimeError(f"{name} is not built in {self.build}")

    def device_flags(self, vram, reserve=None):
        flags = ["--vram", vram] + (["--reserve", reserve] if reserve else [])
        return (["--device", "cpu"] if self.dry else ["--device", "cuda"]) + flags

    def save(self):
        self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        (self.out / "device_check.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (self.out / "device_check.md").write_text(markdown(self.results))

    def part(self, name, function):
        start = time.monotonic()
        try:
            record = function() or {}
            record.setdefault("status", "ok")
        except Exception as error:  # one part failing must not hide the others' results
            record = {"status": "error", "error": str(error)[-4000:]}
            log(name, "FAILED: " + str(error).splitlines()[0] if str(error) else "FAILED")
        record["seconds"] = round(time.monotonic() - start, 1)
        self.results["parts"][name] = record
        log(name, f"{record['status']} in {record['seconds']} s")
        self.save()

    # ---- part 0: build ------------------------------------------------------------------------

    def build_part(self):
        if self.dry:
            missing = [t for t in BUILD_TARGETS if not self.try_binary(t)]
            if missing:
                raise RuntimeError(f"dry run reuses {self.build}; not built there: {missing}")
            return {"build_dir": str(self.build), "note": "dry run: existing build reused"}
        if not (self.bundle / "include" / "nlohmann").is_dir():
            raise RuntimeError(".device_bundle/ is missing: run scripts/device_bundle.sh on the "
                               "build machine and carry .device_bundle to this one")
        configure = ["cmake", "-S", ROOT, "-B", self.build, "-G", "Ninja",
                     "-DCMAKE_BUILD_TYPE=Release", f"-DWAN_PYTHON={sys.executable}",
                     "-DWAN_WITH_MEDIA=OFF", f"-DWAN_BUNDLE_DIR={self.bundle}",
                     "-DWAN_BUILD_PYTHON=OFF", "-DWAN_BUILD_SERVER=OFF"]
        nvcc = shutil.which("nvcc") or next(
            (c for c in ["/usr/local/cuda/bin/nvcc"] if Path(c).exists()), None)
        if nvcc:
            toolkit = Path(nvcc).resolve().parents[1]
            configure += [f"-DCUDA_TOOLKIT_ROOT_DIR={toolkit}", f"-DCMAKE_CUDA_COMPILER={nvcc}"]
        _, configure_log, configure_s = run(configure, "build")
        jobs = str(os.cpu_count() or 4)
        _, build_log, build_s = run(["cmake", "--build", self.build, "-j", jobs, "--target"]
                                    + BUILD_TARGETS, "build", timeout=480)
        cuda = "WAN_WITH_CUDA" in (self.build / "compile_commands.json").read_text()
        return {"build_dir": str(self.build), "configure_s": round(configure_s, 1),
                "build_s": round(build_s, 1), "wan_with_cuda": cuda,
                "torch": configure_log.split("wan-native: torch ")[-1].split("\n")[0]}

    def try_binary(self, name):
        try:
            return self.binary(name)
        except RuntimeError:
            return None

    # ---- part 0b: the CUDA tests --------------------------------------------------------------

    def tests_part(self):
        xml = self.out / "cuda_device_tests.xml"
        code, output, _ = run([self.binary("device_tests"), "--gtest_brief=1",
                               f"--gtest_output=xml:{xml}"], "tests", check=False)
        cases = {"passed": 0, "failed": 0, "skipped": 0}
        skip_reason = ""
        failures = []
        for case in ElementTree.parse(xml).getroot().iter("testcase"):
            if case.get("classname") != "CudaDevice":
                continue
            if case.find("failure") is not None:
                cases["failed"] += 1
                failures.append(case.get("name"))
            elif case.find("skipped") is not None or case.get("result") == "skipped":
                cases["skipped"] += 1
                skipped = case.find("skipped")
                message = (skipped.get("message") if skipped is not None else "") or ""
                skip_reason = message.strip().splitlines()[-1] if message.strip() else skip_reason
            else:
                cases["passed"] += 1
        log("tests", f"CudaDevice: {cases} {skip_reason}")
        record = {"cuda_tests": cases, "device_tests_exit": code, "failures": failures}
        if skip_reason:
            record["skip_reason"] = skip_reason.strip()
        if code != 0:
            record["status"] = "failed"
            record["output"] = output[-3000:]
        elif not self.dry and cases["passed"] == 0:
            record["status"] = "failed"
            record["error"] = "the CUDA tests skipped on the device machine: " + skip_reason
        return record

    # ---- part 1: the four configurations ------------------------------------------------------

    def models(self):
        folder = self.work / ("models_tiny" if self.dry else "models_official")
        if not (folder / "vae" / "random_vae.safetensors").exists():
            run([self.binary("random_models"), "--out", folder, "--size",
                 "tiny" if self.dry else "official", "--tokenizer",
                 ROOT / "tests/data/models/tokenizers/wan_tiny"], "models")
        return folder

    def schema(self):
        if self.object_info is None:
            # stdout alone: a log line on stderr must not end up inside the JSON.
            result = subprocess.run([str(self.binary("wan-run")), "--object-info"], cwd=ROOT,
                                    capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
            if result.returncode != 0:
                raise RuntimeError(f"wan-run --object-info exited {result.returncode}: "
                                   f"{result.stderr[-2000:]}")
            self.object_info = json.loads(result.stdout)
        return self.object_info

    def prompt(self, config, overrides):
        """The shipped t2v workflow of `config` as an API prompt ending in SaveTensor."""
        ui = json.loads((ROOT / "workflows" / "t2v" / f"{config}.json").read_text())
        prompt = ui_to_api(ui, self.schema())
        decode = next(k for k, v in prompt.items() if v["class_type"] == "Decode")
        for key in [k for k, v in prompt.items() if v["class_type"] in MEDIA_OUTPUTS]:
            del prompt[key]
        prompt["100"] = {"class_type": "SaveTensor",
                         "inputs": {"tensor": [decode, 0], "filename_prefix": f"check/{config}"}}
        for assignment, value in overrides.items():
            class_type, name = assignment.split(".")
            for node in prompt.values():
                if node["class_type"] == class_type:
                    node["inputs"][name] = value
        return prompt

    def model_overrides(self):
        size = {"Sample.width": 64, "Sample.height": 64, "Sample.frames": 9} if self.dry else {
            "Sample.width": 832, "Sample.height": 480, "Sample.frames": 81}
        return {"LoadT5.model_name": "random_umt5.safetensors", "LoadT5.tokenizer": "wan_tiny",
                "LoadVAE.model_name": "random_vae.safetensors",
                "LoadDiT.model_name": "random_t2v_dit.safetensors", "Sample.steps": 2, **size}

    def plan_and_run(self, name, prompt, models, vram, reserve=None):
        """(plan JSON, run report JSON, run exit code, run seconds, run log tail)."""
        folder = self.work / "runs" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        prompt_file = folder / "prompt.json"
        prompt_file.write_text(json.dumps(prompt, indent=1))
        wan_run = self.binary("wan-run")
        device = self.device_flags(vram, reserve)
        plan_code, plan_output, _ = run([wan_run, prompt_file, "--models", models, "--plan",
                                         "--report", folder / "plan.json"] + device, name,
                                        check=False)
        if plan_code not in (0, 3):  # 3: the plan foresees an out-of-memory
            raise RuntimeError(f"{name}: wan-run --plan exited {plan_code}:\n{plan_output[-2000:]}")
        code, output, seconds = run([wan_run, prompt_file, "--models", models, "--output",
                                     folder / "output", "--report", folder / "run.json"] + device,
                                    name, check=False)
        plan_file = folder / "plan.json"
        plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
        report = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
        return plan, report, code, seconds, output[-2000:]

    def dry_run_cap(self, models):
        """The planner tests' rule: 15 % above the largest planned peak of the three split
        configurations, which T5 and VAE together exceed (docs/memory_plan.md)."""
        peaks = []
        for config in CONFIGS[1:]:
            folder = self.work / "runs" / f"cap_{config}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "prompt.json").write_text(json.dumps(self.prompt(config, self.model_overrides())))
            run([self.binary("wan-run"), folder / "prompt.json", "--models", models, "--plan",
                 "--report", folder / "plan.json", "--device", "cpu", "--vram", "1GiB",
                 "--reserve", "0"], "configs")
            plan = json.loads((folder / "plan.json").read_text())
            peaks.append(plan["peak"][plan["device"]])
        capacity = max(peaks) * 115 // 100
        self.dry_bytes_per_gib = (capacity + MiB) / 11.49
        return str(capacity + MiB), str(MiB)

    def configs_part(self):
        models = self.models()
        vram, reserve = self.dry_run_cap(models) if self.dry else ("11.49GiB", None)
        rows = []
        for config in CONFIGS:
            plan, report, code, seconds, tail = self.plan_and_run(
                config, self.prompt(config, self.model_overrides()), models, vram, reserve)
            row = compare(config, plan, report, code, seconds)
            expected_oom = config == "baseline"
            row["expected"] = "out of memory moving t5" if expected_oom else "completes"
            error = row.get("error", "")
            row["as_expected"] = ("out of memory moving t5" in error) if expected_oom else code == 0
            if not row["as_expected"]:
                row["log_tail"] = tail
            log("configs", f"{config}: exit {code}, {seconds:.1f} s, device peak measured "
                f"{fmt_bytes(row['measured_peak'])} vs planned {fmt_bytes(row['planned_peak'])}"
                f"{' (' + error[:160] + ')' if error else ''}; as expected: {row['as_expected']}")
            rows.append(row)
        status = "ok" if all(r["as_expected"] for r in rows) else "failed"
        return {"status": status, "vram": vram, "reserve": reserve or "0.5GiB (default)",
                "configs": rows}

    # ---- part 2: placements that do not exist yet ---------------------------------------------

    def placements_part(self):
        schema = self.schema()
        choices = set(schema["LoadDiT"]["input"]["required"]["placement"][0])
        decode_inputs = {**schema["Decode"]["input"]["required"],
                         **schema["Decode"]["input"].get("optional", {})}
        tiled = "tile_size" in decode_inputs
        rows = []
        models = None
        for placement in ["auto", "stream", "tiled-VAE"]:
            supported = tiled if placement == "tiled-VAE" else placement in choices
            # auto also at the fit table's smallest 1.3B cards (docs/memory_plan.md: 3 and 4 GiB),
            # where its plan is to be measured within 5 %.
            cards = ["3GiB", "4GiB", "6GiB", "8GiB"] if placement == "auto" else ["6GiB", "8GiB"]
            for card in cards:
                row = {"placement": placement, "card": card}
                if not supported:
                    row["result"] = "not built"
                    rows.append(row)
                    continue
                models = models or self.models()
                overrides = self.model_overrides()
                if placement == "tiled-VAE":
                    # The t5_cpu configuration with Decode tiled: a 12 GB card's best, made smaller.
                    config = "t5_cpu"
                    overrides.update({"Decode.tile_size": 32 if self.dry else 256,
                                      "Decode.overlap": 8 if self.dry else 32})
                else:
                    # Only the DiT streams its blocks; beside it the T5 computes on the CPU and
                    # the VAE is offloaded (the smallest-card configuration of generate.py).
                    config = "baseline"
                    t5, vae = ("auto", "auto") if placement == "auto" else ("cpu", "offload")
                    overrides.update({"LoadDiT.placement": placement, "LoadT5.placement": t5,
                                      "LoadVAE.placement": vae})
                vram = card
                if self.dry:  # the cards scaled as the dry run's 11.49 GiB stand-in is
                    if not hasattr(self, "dry_bytes_per_gib"):
                        self.dry_run_cap(models)
                    vram = str(int(float(card[:-3]) * self.dry_bytes_per_gib))
                plan, report, code, seconds, _ = self.plan_and_run(
                    f"{placement}_{card}", self.prompt(config, overrides), models, vram,
                    str(MiB) if self.dry else None)
                row.update(compare(f"{placement} {card}", plan, report, code, seconds))
                row["result"] = "completes" if code == 0 else "fails: " + row.get("error", "")[:160]
                rows.append(row)
        log("placements", ", ".join(f"{r['placement']}@{r['card']}: {r['result']}" for r in rows))
        return {"placement_choices": sorted(choices), "tiled_vae": tiled, "rows": rows}

    # ---- part 3: the DiT against the official WanModel ----------------------------------------

    def dit_part(self):
        models = self.models()
        dit = models / "diffusion_models" / "random_t2v_dit.safetensors"
        exported = self.work / "dit_step_io.safetensors"
        size = ["--width", "64", "--height", "64", "--frames", "9", "--text-tokens", "12",
                "--weight-dtype", "fp32", "--compute-dtype", "fp32", "--repeats", "1"] if self.dry \
            else ["--width", "832", "--height", "480", "--frames", "81", "--text-tokens", "120",
                  "--weight-dtype", "fp16", "--compute-dtype", "bf16", "--repeats", "3"]
        ours_json = self.work / "dit_step.json"
        run([self.binary("dit_step_bench"), "--dit", dit, "--export", exported, "--json", ours_json,
             "--device", "cpu" if self.dry else "cuda"] + size, "dit")
        ours = json.loads(ours_json.read_text())
        record = {"ours": ours}
        reference = self.bundle / "reference"
        if not (reference / "model.py").exists():
            record["reference"] = "not run: no reference model.py in .device_bundle/reference " \
                                  "(scripts/device_bundle.sh --reference DIR)"
            record["status"] = "partial"
            return record
        ref_json = self.work / "dit_reference.json"
        run([sys.executable, ROOT / "scripts/device_check/reference_dit.py", "--reference",
             reference, "--dit", dit, "--config",
             models / "diffusion_models" / "random_t2v_dit_config.json", "--inputs", exported,
             "--device", "cpu" if self.dry else "cuda", "--repeats", "1" if self.dry else "3",
             "--json", ref_json], "dit")
        record["reference"] = json.loads(ref_json.read_text())
        record["speed_vs_reference"] = record["reference"]["reference_forward_s"] / ours["forward_s"]
        log("dit", f"ours {ours['forward_s']:.3f} s, reference "
            f"{record['reference']['reference_forward_s']:.3f} s per forward "
            f"({record['speed_vs_reference']:.2f}x), max abs diff "
            f"{record['reference']['max_abs_diff']:.3g}")
        return record

    # ---- part 4: copies, stream vs gpu --------------------------------------------------------

    def copy_part(self):
        result_json = self.work / "h2d_copy.json"
        size = ["--mib", "16", "--repeats", "2"] if self.dry else ["--mib", "1024", "--repeats", "5"]
        run([self.binary("h2d_copy_bench"), "--json", result_json] + size, "copy")
        record = {"copy": json.loads(result_json.read_text())}
        choices = self.schema()["LoadDiT"]["input"]["required"]["placement"][0]
        record["stream_vs_gpu"] = "not built" if "stream" not in choices else self.stream_vs_gpu()
        return record

    def stream_vs_gpu(self):
        """Sample's time per step with the DiT streamed vs resident (t5_cpu graph, the check's card)."""
        models = self.models()
        vram, reserve = ("11.49GiB", None) if not self.dry else self.dry_run_cap(models)
        steps = self.model_overrides()["Sample.steps"]
        per_step = {}
        for placement in ["gpu", "stream"]:
            overrides = {**self.model_overrides(), "LoadDiT.placement": placement}
            _, report, code, _, _ = self.plan_and_run(f"dit_{placement}", self.prompt(
                "t5_cpu", overrides), models, vram, reserve)
            sample = [n for n in report.get("nodes", []) if n["class_type"] == "Sample"]
            per_step[placement] = sample[0]["wall_s"] / steps if code == 0 and sample else None
        if per_step["gpu"] and per_step["stream"]:
            per_step["stream_over_gpu"] = per_step["stream"] / per_step["gpu"]
        return per_step

    def run_all(self):
        # Placements last: they are the new, optional rows; a run cut short loses those first.
        parts = [("build", self.build_part), ("tests", self.tests_part),
                 ("configs", self.configs_part), ("dit", self.dit_part),
                 ("copy", self.copy_part), ("placements", self.placements_part)]
        wanted = set(self.args.parts.split(",")) if self.args.parts else None
        if wanted is not None and "build" not in wanted and not self.dry and not all(
                self.try_binary(t) for t in BUILD_TARGETS):
            wanted.add("build")  # a fresh machine: the parts asked for need the build first
            log("build", f"{self.build} lacks the targets: building first")
        self.work.mkdir(parents=True, exist_ok=True)
        for name, function in parts:
            if wanted is None or name in wanted:
                self.part(name, function)
        failed = [n for n, r in self.results["parts"].items() if r["status"] in ("error", "failed")]
        total = sum(r["seconds"] for r in self.results["parts"].values())
        log("done", f"{total:.0f} s in all")
        log("done", f"{self.out / 'device_check.json'}, {self.out / 'device_check.md'}; "
            + (f"FAILED parts: {failed}" if failed else "every part ran"))
        return 1 if failed else 0


def ui_to_api(ui, object_info):
    """ComfyUI's frontend conversion for plain graphs (no groups, reroutes or converted widgets),
    which the shipped t2v workflows are: widget values in schema order, one extra value after an
    INT with control_after_generate."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        schema = object_info[node["type"]]
        spec = {**schema["input"]["required"], **schema["input"].get("optional", {})}
        order = schema["input_order"]["required"] + schema["input_order"].get("optional", [])
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        values = list(node.get("widgets_values", []))
        inputs = {}
        for name in order:
            kind = spec[name][0]
            options = spec[name][1] if len(spec[name]) > 1 else {}
            if name in linked:
                link = links[linked[name]]
                inputs[name] = [str(link[1]), link[2]]
            elif values and (isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")):
                inputs[name] = values.pop(0)  # a widget the file leaves out keeps its default
                if options.get("control_after_generate") and values:
                    values.pop(0)
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def compare(name, plan, report, code, seconds):
    """Per node: the device peak the run measured (CUDA allocator or virtual pool) and the plan's."""
    device = plan.get("device", "")
    planned = {n["node"]: n for n in plan.get("nodes", [])}
    nodes = []
    for node in report.get("nodes", []):
        p = planned.get(node["node"], {})
        measured = node.get("bytes_peak", {}).get(device)
        predicted = p.get("bytes_peak", {}).get(device)
        nodes.append({"node": node["node"], "class_type": node["class_type"],
                      "outcome": node.get("outcome"), "measured_peak": measured,
                      "planned_peak": predicted, "error_pct": pct(predicted, measured),
                      "wall_s": node.get("wall_s")})
    failed = [n for n in report.get("nodes", []) if n.get("outcome") == "error"]
    measured_peak = max((n["measured_peak"] or 0 for n in nodes), default=None)
    row = {"config": name, "device": device, "exit": code, "seconds": round(seconds, 1),
           "planned_fits": plan.get("fits"), "planned_peak": plan.get("peak", {}).get(device),
           "planned_peak_node": plan.get("peak_node"), "measured_peak": measured_peak,
           "nodes": nodes}
    row["peak_error_pct"] = pct(row["planned_peak"], measured_peak)
    if failed:
        row["error"] = failed[0].get("error", "")
    return row


def pct(planned, measured):
    if not planned or not measured:
        return None
    return round(100.0 * (planned - measured) / measured, 2)


def pct_text(value):
    return "-" if value is None else f"{value:+.2f} %"


def fmt_bytes(value):
    if value is None:
        return "-"
    return f"{value / GiB:.2f} GiB" if value >= GiB else f"{value / MiB:.2f} MiB"


def markdown(results):
    """The report's tables, one section per part."""
    parts = results["parts"]
    lines = [f"# Device check ({results['mode']}, {results['started']})", ""]
    lines += ["| part | status | seconds |", "|---|---|---|"]
    lines += [f"| {n} | {r['status']} | {r['seconds']} |" for n, r in parts.items()]
    if "tests" in parts and "cuda_tests" in parts["tests"]:
        t = parts["tests"]
        lines += ["", f"CUDA tests: {t['cuda_tests']}" + (f" ({t['skip_reason']})"
                                                           if t.get("skip_reason") else "")]
    if "configs" in parts and "configs" in parts["configs"]:
        c = parts["configs"]
        lines += ["", f"## Four configurations (--vram {c['vram']}, reserve {c['reserve']})", "",
                  "| config | expected | as expected | device peak measured | planned | error | "
                  "peak node (plan) | seconds | first error |", "|---|---|---|---|---|---|---|---|---|"]
        for r in c["configs"]:
            lines.append(f"| {r['config']} | {r['expected']} | {r['as_expected']} | "
                         f"{fmt_bytes(r['measured_peak'])} | {fmt_bytes(r['planned_peak'])} | "
                         f"{pct_text(r['peak_error_pct'])} | {r['planned_peak_node']} | {r['seconds']} | "
                         f"{r.get('error', '')[:200]} |")
        lines += ["", "Per node (device peak, measured / planned):", "",
                  "| config | node | measured | planned | error |", "|---|---|---|---|---|"]
        for r in c["configs"]:
            for n in r["nodes"]:
                lines.append(f"| {r['config']} | {n['class_type']} ({n['node']}) | "
                             f"{fmt_bytes(n['measured_peak'])} | {fmt_bytes(n['planned_peak'])} | "
                             f"{pct_text(n['error_pct'])} |")
    if "placements" in parts and "rows" in parts["placements"]:
        lines += ["", "## auto / stream / tiled VAE", "", "| placement | card | result | "
                  "device peak measured | planned |", "|---|---|---|---|---|"]
        for r in parts["placements"]["rows"]:
            lines.append(f"| {r['placement']} | {r['card']} | {r['result']} | "
                         f"{fmt_bytes(r.get('measured_peak'))} | {fmt_bytes(r.get('planned_peak'))} |")
    if "dit" in parts and "ours" in parts["dit"]:
        d = parts["dit"]
        o = d["ours"]
        lines += ["", "## DiT forward", "",
                  f"{o['width']}x{o['height']}x{o['frames']} ({o['tokens']} tokens), "
                  f"{o['weight_dtype']} weights, {o['compute_dtype']} compute on {o['device']}: "
                  f"wan-native {o['forward_s']:.3f} s per forward"]
        ref = d.get("reference")
        if isinstance(ref, dict):
            lines[-1] += (f"; official WanModel with PyTorch attention {ref['reference_forward_s']:.3f} s "
                         f"(reference / wan-native = {d['speed_vs_reference']:.2f}); max |difference| {ref['max_abs_diff']:.3g} "
                          f"({ref['max_rel_diff']:.3g} of max |reference|), mean {ref['mean_abs_diff']:.3g}")
        else:
            lines[-1] += f"; reference: {ref}"
    if "copy" in parts and "copy" in parts["copy"]:
        c = parts["copy"]["copy"]
        def gbps(v):
            return "n/a" if v is None else f"{v:.2f} GB/s"
        lines += ["", "## Host <-> device copies", "", "| from | host -> device | device -> host |",
                  "|---|---|---|", f"| pageable | {gbps(c['h2d_pageable_gbps'])} | {gbps(c['d2h_pageable_gbps'])} |",
                  f"| pinned | {gbps(c['h2d_pinned_gbps'])} | {gbps(c['d2h_pinned_gbps'])} |", "",
                  f"{c['mib']} MiB x {c['repeats']} on {c['device']}; Sample seconds per step, "
                  f"DiT stream vs gpu: {parts['copy']['stream_vs_gpu']}"]
    for name, record in parts.items():
        if record["status"] in ("error", "failed") and record.get("error"):
            lines += ["", f"**{name} failed:**", "", "```", record["error"][-1500:], "```"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for device_check.{json,md}")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU: reuse the build folder, tiny models, virtual accelerator")
    parser.add_argument("--build-dir", help="default build-device (device) or build (dry run)")
    parser.add_argument("--work", help="scratch folder (default BUILD/device_check_work)")
    parser.add_argument("--parts", help="comma-separated subset of build,tests,configs,"
                                        "dit,copy,placements")
    args = parser.parse_args()
    sys.exit(Check(args).run_all())


if __name__ == "__main__":
    main()
