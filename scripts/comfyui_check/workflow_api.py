"""A ComfyUI UI workflow as the API prompt the frontend queues (its graphToPrompt rules).

The widget inputs of a node are, in /object_info's input order, those of a widget type (a combo,
INT, FLOAT, STRING, BOOLEAN) not marked forceInput; widgets_values holds them in that order, with
one extra value after each input marked control_after_generate ("fixed", "randomize", ...).
Links win over widget values; Reroute and bypassed nodes pass their input through; muted nodes,
notes and frontend-only nodes are left out.
"""

MUTED, BYPASSED = 2, 4
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


class WorkflowError(ValueError):
    pass


def input_specs(info):
    """[(name, type, options)] of a node's inputs in the order the frontend lays them out."""
    order = info.get("input_order") or {
        section: list(info["input"].get(section, {})) for section in ("required", "optional")}
    specs = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            spec = info["input"][section][name]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            specs.append((name, spec[0], options))
    return specs


def is_widget(kind, options):
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput")


def widget_inputs(info):
    return [(name, bool(options.get("control_after_generate")))
            for name, kind, options in input_specs(info) if is_widget(kind, options)]


def _links(ui):
    links = {}
    for link in ui.get("links") or []:
        if isinstance(link, list) and len(link) >= 5:
            links[link[0]] = (str(link[1]), link[2])
        elif isinstance(link, dict):
            links[link["id"]] = (str(link["origin_id"]), link.get("origin_slot", 0))
        else:
            raise WorkflowError("malformed link %r" % (link,))
    return links


def _resolve(nodes, links, link_id, wanted_type):
    """(node id, slot) feeding a link once Reroute and bypassed nodes are passed, or None."""
    for _ in range(len(nodes) + 1):
        if link_id not in links:
            raise WorkflowError("link %s is not in 'links'" % link_id)
        origin, slot = links[link_id]
        node = nodes.get(origin)
        if node is None:
            return origin, slot
        kind, mode = node.get("type"), node.get("mode", 0)
        if kind == "Reroute" or mode == BYPASSED:
            inputs = node.get("inputs") or []
            candidates = [slot] + list(range(len(inputs)))
            link_id = None
            for i in candidates:
                if 0 <= i < len(inputs) and (kind == "Reroute"
                                             or inputs[i].get("type") == wanted_type):
                    link_id = inputs[i].get("link")
                    break
            if link_id is None:
                return None
            continue
        if mode == MUTED:
            return None
        return origin, slot
    raise WorkflowError("a loop of Reroute/bypassed nodes")


def to_api(ui, object_info):
    """The API prompt {id: {class_type, inputs, _meta}} for a UI workflow."""
    if not isinstance(ui.get("nodes"), list):
        raise WorkflowError("not a UI workflow (no 'nodes' array)")
    nodes = {str(n["id"]): n for n in ui["nodes"]}
    links = _links(ui)
    prompt = {}
    for node_id, node in nodes.items():
        kind, mode = node.get("type", ""), node.get("mode", 0)
        if kind in FRONTEND_ONLY or mode in (MUTED, BYPASSED):
            continue
        if kind not in object_info:
            raise WorkflowError("node %s: type %s is not in /object_info" % (node_id, kind))
        info = object_info[kind]
        inputs = {}
        values = node.get("widgets_values") or []
        if isinstance(values, dict):
            inputs.update({k: v for k, v in values.items()
                           if k in dict(widget_inputs(info))})
        else:
            index = 0
            for name, control in widget_inputs(info):
                if index >= len(values):
                    break
                inputs[name] = values[index]
                index += 2 if control else 1
        for socket in node.get("inputs") or []:
            if socket.get("link") is None:
                continue
            name = (socket.get("widget") or {}).get("name", socket.get("name"))
            source = _resolve(nodes, links, socket["link"], socket.get("type"))
            if source is None:
                inputs.pop(name, None)
            else:
                inputs[name] = [source[0], source[1]]
        prompt[node_id] = {"class_type": kind, "inputs": inputs,
                           "_meta": {"title": node.get("title") or info.get("display_name")
                                     or kind}}
    return prompt


def apply_overrides(prompt, sets):
    """`TARGET.INPUT=VALUE` assignments, as wan-run's --set: TARGET is a class type, a title or
    a node id. Returns the prompt; raises WorkflowError for a target that matches nothing."""
    for assignment in sets:
        target_input, value = assignment.split("=", 1)
        target, name = target_input.rsplit(".", 1)
        hit = False
        for node_id, node in prompt.items():
            if target in (node_id, node["class_type"], node.get("_meta", {}).get("title")):
                node["inputs"][name] = _literal(value, node["inputs"].get(name))
                hit = True
        if not hit:
            raise WorkflowError("--set %s: no node is %s" % (assignment, target))
    return prompt


def _literal(text, current):
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    return text


def set_ui_widgets(ui, object_info, sets):
    """The same assignments on a UI workflow's widgets_values (for the frontend check)."""
    for assignment in sets:
        target_input, value = assignment.split("=", 1)
        target, name = target_input.rsplit(".", 1)
        for node in ui["nodes"]:
            kind = node.get("type")
            title = node.get("title") or object_info.get(kind, {}).get("display_name")
            if target not in (str(node["id"]), kind, title) or kind not in object_info:
                continue
            index = 0
            for widget, control in widget_inputs(object_info[kind]):
                if widget == name:
                    values = node["widgets_values"]
                    values[index] = _literal(value, values[index])
                    break
                index += 2 if control else 1
    return ui
