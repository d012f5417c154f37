#!/usr/bin/env python3
"""check_sdm.py SDM_DIR EXPOSITION: checks sdm-schemas/ with an independent
JSON Schema validator (Debian's python3-jsonschema, draft 2020-12).

  1. every schema is a valid draft 2020-12 schema;
  2. every example validates against its form's schema, and not against
     the other form's (the two schemas tell the forms apart);
  3. broken copies of the examples are rejected (the schemas are not
     vacuous);
  4. relationships in the examples point to example entities that exist;
  5. the @context defines every type and attribute;
  6. every mapping rule names a type, attribute and unitCode the schemas
     define, and a metric (and label set) the testbed's exposition has;
  7. the entities the rules build from the exposition (non-rate rules)
     validate against the keyValues schemas, relationships included.
Prints one line per problem; exit 1 when there is any.
"""
import copy, json, os, re, sys
import yaml
from jsonschema import Draft202012Validator, FormatChecker

sdm, expo_path = sys.argv[1], sys.argv[2]
ngsi = os.path.join(sdm, "ngsi-ld")
problems = []
def problem(msg): problems.append(msg)

def load(path):
    with open(path) as f:
        return json.load(f)

types = sorted(d for d in os.listdir(ngsi) if os.path.isdir(os.path.join(ngsi, d)))
V = {}
examples = {}
for t in types:
    for form, sname, ename in (("kv", "schema.json", "example.json"),
                               ("norm", "schema.normalized.json", "example-normalized.json")):
        schema = load(os.path.join(ngsi, t, sname))
        Draft202012Validator.check_schema(schema)
        V[t, form] = Draft202012Validator(schema, format_checker=FormatChecker())
        examples[t, form] = load(os.path.join(ngsi, t, ename))
checked = 0
for (t, form), ex in examples.items():
    other = "norm" if form == "kv" else "kv"
    for e in V[t, form].iter_errors(ex):
        problem(f"{t} {form} example: {e.json_path}: {e.message}")
    if V[t, other].is_valid(ex):
        problem(f"{t} {form} example also passes the {other} schema")
    checked += 1

# 3. broken copies must fail
def must_fail(t, form, doc, what):
    if V[t, form].is_valid(doc):
        problem(f"{t} {form}: accepted {what}")
for (t, form), ex in examples.items():
    bad = copy.deepcopy(ex); bad["id"] = ex["id"].replace(f":{t}:", ":Other:")
    must_fail(t, form, bad, "an id of another type")
    bad = copy.deepcopy(ex); bad["notAnAttribute"] = 1
    must_fail(t, form, bad, "an unknown attribute")
    bad = copy.deepcopy(ex); del bad["type"]
    must_fail(t, form, bad, "no type")
    for k, v in ex.items():
        if form == "norm" and isinstance(v, dict) and v.get("type") == "Property":
            bad = copy.deepcopy(ex); del bad[k]["value"]
            must_fail(t, form, bad, f"Property {k} without value")
            if isinstance(v["value"], (int, float)):
                bad = copy.deepcopy(ex); bad[k]["value"] = str(v["value"])
                must_fail(t, form, bad, f"{k} as a string")
            break
    for k, v in ex.items():
        if form == "norm" and isinstance(v, dict) and v.get("type") == "Relationship":
            bad = copy.deepcopy(ex); bad[k]["object"] = "not-a-urn"
            must_fail(t, form, bad, f"Relationship {k} to a non-URN")
            break

# 4. relationships resolve
ids = {ex["id"] for (t, form), ex in examples.items()}
for (t, form), ex in examples.items():
    for k, v in ex.items():
        if k == "id":
            continue
        if form == "norm" and isinstance(v, dict) and v.get("type") == "Relationship":
            targets = v["object"]
        elif form == "kv" and "^urn:ngsi-ld:" in json.dumps(V[t, "kv"].schema["properties"].get(k, {})):
            targets = v
        else:
            continue
        for o in (targets if isinstance(targets, list) else [targets]):
            if o not in ids:
                problem(f"{t} {form} example: {k} points to {o}, which no example defines")

# 5. context
ctx = load(os.path.join(ngsi, "context.jsonld"))["@context"][0]
for t in types:
    if t not in ctx:
        problem(f"@context lacks type {t}")
    for a in V[t, "kv"].schema["properties"]:
        if a not in ("id", "type", "@context") and a not in ctx:
            problem(f"@context lacks attribute {a} of {t}")

# 6. mapping rules against schemas and the exposition
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
series = []
with open(expo_path) as f:
    for line in f:
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r'([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)', line)
        if m:
            series.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))

def selected(metric, match):
    return [(l, v) for (n, l, v) in series if n == metric and
            all(re.fullmatch(rx, l.get(k, "")) for k, rx in (match or {}).items())]

def fill(template, labels):
    try:
        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: labels[m.group(1)], template)
    except KeyError as e:
        return None

def labels_of(rule, l):
    l = dict(l); l.update(rule.get("labels", {}))
    for name, d in (rule.get("derive") or {}).items():
        m = re.fullmatch(d["regex"], l.get(d["from"], ""))
        if m:
            l[name] = m.expand(d["replacement"].replace("$", "\\"))
    return l

rules = yaml.safe_load(open(os.path.join(sdm, "mapping", "testbed.yaml")))
TRANSFORMS = {"identity", "rate", "info"}
entities = {}
def entity(t, i):
    return entities.setdefault(i, {"id": i, "type": t})
for n, r in enumerate(rules["rules"]):
    where = f"rule {n} ({r['metric']} -> {r['entity']['type']}.{r['attribute']})"
    t = r["entity"]["type"]
    if (t, "norm") not in V:
        problem(f"{where}: no schema for {t}"); continue
    prop = V[t, "norm"].schema["properties"].get(r["attribute"])
    if not prop:
        problem(f"{where}: {t} has no attribute {r['attribute']}"); continue
    unit = prop["properties"].get("unitCode", {}).get("const")
    if unit != r.get("unitCode"):
        problem(f"{where}: unitCode {r.get('unitCode')} but the schema says {unit}")
    if r.get("transform") not in TRANSFORMS:
        problem(f"{where}: unknown transform {r.get('transform')}")
    if not r["entity"]["id"].startswith(f"urn:ngsi-ld:{t}:"):
        problem(f"{where}: id template is not urn:ngsi-ld:{t}:...")
    rows = selected(r["metric"], r.get("match"))
    if not rows:
        problem(f"{where}: no series of the exposition matches"); continue
    # 7. build values (rates need two scrapes: only their presence is checked)
    acc = {}
    for l, v in rows:
        l = labels_of(r, l)
        i = fill(r["entity"]["id"], l)
        if i is None:
            problem(f"{where}: id template uses a label the series lacks"); break
        if "value_from_label" in r:
            acc[i] = l.get(r["value_from_label"])
            continue
        if "value_map" in r:
            if v == 1:
                acc[i] = r["value_map"]["values"].get(l.get(r["value_map"]["label"]))
            continue
        acc[i] = acc.get(i, 0) + v if r.get("aggregate") == "sum" else v
    if r.get("transform") == "rate":
        continue
    for i, v in acc.items():
        if isinstance(v, (int, float)):
            if "divide_by" in r:
                d = r["divide_by"]
                div = [dv for dl, dv in selected(d["metric"], d.get("match"))
                       if fill(r["entity"]["id"], labels_of(r, dl)) == i]
                if not div:
                    problem(f"{where}: no divisor {d['metric']} for {i}"); continue
                v = v / div[0]
            v = v * r.get("scale", 1) + r.get("offset", 0)
            v = min(max(v, r.get("min", v)), r.get("max", v))
        entity(t, i)[r["attribute"]] = v

for n, r in enumerate(rules["relationships"]):
    where = f"relationship rule {n} ({r['predicate']})"
    rows = selected(r["metric"], r.get("match"))
    if not rows:
        problem(f"{where}: no series of {r['metric']} matches")
    for l, v in rows:
        l = labels_of(r, l)
        s, o = fill(r["subject"], l), fill(r["object"], l)
        if s is None or o is None:
            problem(f"{where}: template uses a label the series lacks"); break
        st = s.split(":")[2]
        entity(st, s)[r["predicate"]] = o
for e in rules.get("static_entities", []):
    x = entity(e["type"], e["id"]); x.update(e.get("attributes", {})); x.update(e.get("relationships", {}))

built = 0
for i, e in sorted(entities.items()):
    for err in V[e["type"], "kv"].iter_errors(e):
        problem(f"built entity {i}: {err.json_path}: {err.message}")
    for k, v in e.items():
        if k in ("id", "type"):
            continue
        for o in (v if isinstance(v, list) else [v]):
            if isinstance(o, str) and o.startswith("urn:ngsi-ld:") and o not in entities:
                problem(f"built entity {i}: {k} points to {o}, which the rules never build")
    built += 1

for p in problems:
    print(p)
print(f"{len(types)} types, {checked} examples, {len(rules['rules'])} rules, "
      f"{len(rules['relationships'])} relationship rules, {built} entities built, {len(problems)} problems")
sys.exit(1 if problems else 0)
