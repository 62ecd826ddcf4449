#!/usr/bin/env python3
"""Derive Pica's drug catalog (data/drugs.csv) from the WHO Model List of
Essential Medicines as shipped in the PyPI package
``gnuhealth-who-essential-medicines`` (GPL-3.0-or-later; only facts are taken:
names, dosage forms, strengths, ingredients and therapeutic sections).

Get the source data:

    pip download --no-deps -d /tmp/whoem gnuhealth-who-essential-medicines
    unzip -o -q /tmp/whoem/gnuhealth_who_essential_medicines-*.whl -d /tmp/whoem/pkg

Regenerate the catalog (from the repository root):

    python3 scripts/derive_drug_catalog.py \\
        /tmp/whoem/pkg/trytond/modules/health_who_essential_medicines/data/WHO_list_of_essential_medicines.xml

The section names are read from ``medicament_categories.xml`` next to the
given XML (override with --categories). Every dosage-form line and every
strength becomes its own product; a hand-written list of common brand-name
products (BRANDS) is appended. Standard library only, Python 3.11.
"""
import argparse
import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path

HEADER = ["id", "name", "form", "strength", "short_composition1", "short_composition2", "category"]

# Shortened labels for top-level sections whose official names are very long.
SHORT_SECTIONS = {
    "em_2": "Analgesics, antipyretics and anti-inflammatory medicines",
    "em_8": "Antineoplastic, immunosuppressive and palliative care medicines",
    "em_20": "Muscle relaxants and cholinesterase inhibitors",
    "em_26": "Water, electrolyte and acid-base solutions",
}
# Spelling fixes and preferred names, keyed by the cleaned lower-case ingredient.
ALIASES = {
    "acetylsalicylic acid": "aspirin", "epinefrine": "epinephrine",
    "choloroquine": "chloroquine", "nicotine replacement therapy": "nicotine",
    "tenofovir disoproxil fumarate": "tenofovir", "insulin injection": "soluble insulin",
    "charcoal, activated": "activated charcoal", "polyvidone iodine": "povidone iodine",
    "sodium lactate, compound solution": "compound sodium lactate",
    "potassium ferric hexacyano-ferrate - 2h20": "prussian blue",
}
DISPLAY = {"Aspirin": "Aspirin (Acetylsalicylic Acid)"}  # generic product names only
SKIP = {"condoms", "diaphragms", "copper-containing device"}  # devices, not drugs
FORM_WORDS = re.compile(r"tablet|capsule|inject|liquid|powder|suppositor|solution|cream|ointment|"
                        r"lotion|gel|drops|inhal|spray|granules|lozenge|pessary|patch|gum|infusion|"
                        r"cartridge|suspension|form|enema|oil|topical|administration|concentrate", re.I)
HEAD = re.compile(r"^([A-Za-z][A-Za-z ,()/*-]{1,60}?)\s*:\s*(.*)$")
AMOUNT = re.compile(r"(?<![\w.])(?:(1:\d[\d ]*\d)|(\d{1,3}(?: \d{3})+|\d+(?:\.\d+)?)\s*"
                    r"(million IU|micrograms?|mcg|mg|g|IU|%)(?![A-Za-z]))")
PER = re.compile(r"(?:/|\bper\b)\s*(\d+(?:\.\d+)?\s*)?(ml|L|metered dose|dose|hours|hrs)\b")
CONTEXT = ("em_1_3", "em_7", "em_8_4")  # re-listings by use (sedation, migraine, palliative care)
SMALL = {"for", "with", "of", "in", "and", "or", "to", "as"}

# Brand products: (brand, form, WHO section number, "ingredient amount + ingredient amount").
BRANDS = [
    ("Panadol", "Tablet", 2, "paracetamol 500 mg"),
    ("Panadol Extra", "Tablet", 2, "paracetamol 500 mg + caffeine 65 mg"),
    ("Tylenol", "Tablet", 2, "paracetamol 325 mg"),
    ("Calpol", "Oral Suspension", 2, "paracetamol 120 mg/5 ml"),
    ("Solpadeine Plus", "Tablet", 2, "paracetamol 500 mg + codeine 8 mg + caffeine 30 mg"),
    ("Advil", "Tablet", 2, "ibuprofen 200 mg"),
    ("Nurofen", "Tablet", 2, "ibuprofen 200 mg"),
    ("Nurofen for Children", "Oral Suspension", 2, "ibuprofen 100 mg/5 ml"),
    ("Disprin", "Dispersible Tablet", 2, "aspirin 300 mg"),
    ("Bayer Aspirin", "Tablet", 2, "aspirin 325 mg"),
    ("Ecosprin", "Tablet", 12, "aspirin 75 mg"),
    ("Voltaren", "Tablet", 2, "diclofenac 50 mg"),
    ("Voltaren Emulgel", "Gel", 2, "diclofenac 1%"),
    ("Augmentin", "Tablet", 6, "amoxicillin 500 mg + clavulanic acid 125 mg"),
    ("Augmentin", "Tablet", 6, "amoxicillin 875 mg + clavulanic acid 125 mg"),
    ("Amoxil", "Capsule", 6, "amoxicillin 500 mg"),
    ("Cipro", "Tablet", 6, "ciprofloxacin 500 mg"),
    ("Zithromax", "Capsule", 6, "azithromycin 250 mg"),
    ("Flagyl", "Tablet", 6, "metronidazole 400 mg"),
    ("Bactrim DS", "Tablet", 6, "sulfamethoxazole 800 mg + trimethoprim 160 mg"),
    ("Septrin", "Tablet", 6, "sulfamethoxazole 400 mg + trimethoprim 80 mg"),
    ("Diflucan", "Capsule", 6, "fluconazole 150 mg"),
    ("Zovirax", "Tablet", 6, "aciclovir 200 mg"),
    ("Zovirax", "Cream", 13, "aciclovir 5%"),
    ("Tamiflu", "Capsule", 6, "oseltamivir 75 mg"),
    ("Coartem", "Tablet", 6, "artemether 20 mg + lumefantrine 120 mg"),
    ("Kaletra", "Tablet", 6, "lopinavir 200 mg + ritonavir 50 mg"),
    ("Truvada", "Tablet", 6, "emtricitabine 200 mg + tenofovir 300 mg"),
    ("Atripla", "Tablet", 6, "efavirenz 600 mg + emtricitabine 200 mg + tenofovir 300 mg"),
    ("Zyrtec", "Tablet", 3, "cetirizine 10 mg"),
    ("Claritin", "Tablet", 3, "loratadine 10 mg"),
    ("Nexium", "Tablet", 17, "esomeprazole 20 mg"),
    ("Losec", "Capsule", 17, "omeprazole 20 mg"),
    ("Zantac", "Tablet", 17, "ranitidine 150 mg"),
    ("Lipitor", "Tablet", 12, "atorvastatin 10 mg"),
    ("Norvasc", "Tablet", 12, "amlodipine 5 mg"),
    ("Plavix", "Tablet", 12, "clopidogrel 75 mg"),
    ("Lasix", "Tablet", 16, "furosemide 40 mg"),
    ("Glucophage", "Tablet", 18, "metformin 500 mg"),
    ("Glucophage", "Tablet", 18, "metformin 850 mg"),
    ("Synthroid", "Tablet", 18, "levothyroxine 100 micrograms"),
    ("Ventolin", "Inhaler", 25, "salbutamol 100 micrograms/dose"),
    ("Prozac", "Capsule", 24, "fluoxetine 20 mg"),
    ("Valium", "Tablet", 24, "diazepam 5 mg"),
    ("Tegretol", "Tablet", 5, "carbamazepine 200 mg"),
    ("Sinemet", "Tablet", 9, "levodopa 250 mg + carbidopa 25 mg"),
]


def clean(text):
    """Collapse odd whitespace and unify the various Unicode dashes."""
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text or "")
    return re.sub(r"\s+", " ", text).strip()


def in_context(ref):
    return any(ref == c or ref.startswith(c + "_") for c in CONTEXT)


def titled(text):
    """Capitalise each word's first letter, keeping the rest as written (BCG, IX)."""
    words = clean(text).split(" ")
    return " ".join(w if i and w in SMALL else re.sub(r"[A-Za-z]", lambda m: m[0].upper(), w, count=1)
                    for i, w in enumerate(words))


def ingredient(raw):
    name = clean(re.sub(r"\([^()]*\)", "", raw))
    return titled(ALIASES.get(name.lower(), name))


def norm_amount(num, unit):
    num = num.replace(" ", "")
    if ":" in num:  # dilution ratio such as 1:80000
        return num
    if unit == "million IU":
        num, unit = f"{float(num) * 1e6:.0f}", "IU"
    return f"{num} {'mcg' if unit.startswith('microgram') else unit}".replace(" %", "%")


def amounts(part):
    """Amounts in one strength phrase, plus an optional '/5 ml'-style denominator."""
    found = [norm_amount(m[1], "") if m[1] else norm_amount(m[2], m[3])
             for m in AMOUNT.finditer(part)]
    per = PER.search(part)
    if not per:
        return found, ""
    unit = {"metered dose": "dose", "hrs": "hours"}.get(per[2], per[2])
    return found, "/" + (f"{per[1].strip()} " if per[1] else "") + unit


def strengths(value, n):
    """Yield one tuple of n per-ingredient strengths for every strength in value."""
    value = re.sub(r"\[c\]|\*|\bEq\b|\bbase\b", "", value)
    value = re.sub(r"(\d(?:\.\d+)?)-(\d+(?:\.\d+)?)\s*([a-z%]+)", r"\1 \3 to \2 \3", value)
    for _ in range(2):
        value = re.sub(r"\([^()]*\)", "", value)
    value = re.sub(r"\s*=[^;]*|,\s*equivalent\b[^;]*", "", value)
    pieces, parsed = re.split(r";| AND |\s+(?:or|and)\s+(?=\d)", value), []
    for piece in pieces:
        for part in re.split(r"\s+to\s+(?=\d)", piece):
            parsed.append(amounts(part))
    den = ""
    for found, per in reversed(parsed):  # '10 mg; 40 mg/ml' means 10 mg/ml too
        den = per or den
        if len(found) == n or (n == 1 and found):
            yield tuple(a if "/" in a or ":" in a else a + (per or den) for a in found[:n])


def form_entries(notes):
    """Split a notes field into (dosage form, strength text) pairs."""
    entries, current = [], None
    for line in (notes or "").splitlines():
        line = clean(line)
        head = HEAD.match(line)
        if head and FORM_WORDS.search(head[1]):
            current = [head[1], head[2]]
            entries.append(current)
        elif current and line and (line[0].isdigit() or not current[1]
                                   or current[1].count("(") > current[1].count(")")):
            current[1] += ("; " if current[1].endswith(".") else " ") + line
        elif line:
            current = None
    return entries


def form_name(raw):
    raw = re.sub(r"\((?:as [^)]*|HCI)\)|\*", "", raw)
    return titled(raw)


def product(label, ingredients, parts, form, category, display=True):
    names = [DISPLAY.get(i, i) if display else i for i in ingredients]
    strength = " + ".join(parts)
    dens = {p[p.find("/"):] if "/" in p else "" for p in parts}
    if len(parts) > 1 and len(dens) == 1 and "" not in dens:  # 200 mg + 40 mg/5 ml
        strength = " + ".join(p.split("/")[0] for p in parts) + dens.pop()
    name = clean(" ".join([label or " + ".join(names), strength, form]))
    comps = [f"{i} ({s.replace(' ', '')})" if s else i
             for i, s in zip(ingredients, parts or [""] * len(ingredients))]
    return {"name": name, "form": form, "strength": strength, "short_composition1": comps[0],
            "short_composition2": " + ".join(comps[1:]), "category": category}


def load_sections(path):
    cats = {}
    for rec in ET.parse(path).iter("record"):
        fields = {f.get("name"): f for f in rec.iter("field")}
        cats[rec.get("id")] = (clean(fields["name"].text), fields.get("parent", {}).get("ref"))
    labels = {}
    for cid in cats:
        top = cid
        while cats.get(top, (None, None))[1] not in (None, "em", "medicament"):
            top = cats[top][1]
        name = cats[top][0]
        words = [w.lower() if w.isupper() else w for w in name.split(" ")]
        labels[cid] = SHORT_SECTIONS.get(top) or (" ".join(words)[:1].upper() + " ".join(words)[1:])
    return labels


def generic_products(xml_path, sections):
    records, primary = [], {}
    for rec in ET.parse(xml_path).iter("record"):
        if rec.get("model") != "gnuhealth.medicament":
            continue
        fields = {f.get("name"): f for f in rec.iter("field")}
        active = fields["active_component"].text or ""
        ingredients = [ingredient(p) for p in re.split(r"\s*\+\s*|\s+with\s+|\s+\u2013\s+", active)]
        ref = fields["category"].get("ref")
        if ingredients[0].lower() not in SKIP:
            records.append((ingredients, ref, fields["notes"].text if "notes" in fields else ""))
        if not in_context(ref):
            primary.setdefault(tuple(ingredients), sections[ref])
    for ingredients, ref, notes in records:
        # A re-listing for a use context keeps the medicine's main section.
        category = primary.get(tuple(ingredients), sections[ref]) if in_context(ref) else sections[ref]
        entries, made = form_entries(notes), 0
        for raw_form, value in entries:
            for parts in strengths(value, len(ingredients)):
                made += 1
                yield product(None, ingredients, list(parts), form_name(raw_form), category)
        if not made:  # no parsable strength: one product per form, or the bare medicine
            forms = [form_name(f) for f, _ in entries]
            short = clean(notes).rstrip(".")
            if not forms and short != "None" and len(short.split()) <= 3:
                forms = [titled(short)]
            for form in forms or [""]:
                yield product(None, ingredients, [], form, category)


def brand_products(sections):
    for brand, form, section, spec in BRANDS:
        pairs = [re.match(r"(.+?)\s+(\d.*)$", p.strip()).groups() for p in spec.split(" + ")]
        parts = [s.replace("micrograms", "mcg") for _, s in pairs]
        yield product(brand, [ingredient(i) for i, _ in pairs], parts, form,
                      sections[f"em_{section}"], display=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("xml", type=Path, help="WHO_list_of_essential_medicines.xml")
    ap.add_argument("--categories", type=Path, help="medicament_categories.xml (default: next to xml)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "drugs.csv")
    args = ap.parse_args()
    sections = load_sections(args.categories or args.xml.with_name("medicament_categories.xml"))
    rows, seen = [], set()
    for row in [*generic_products(args.xml, sections), *brand_products(sections)]:
        if row["name"].lower() not in seen:
            seen.add(row["name"].lower())
            rows.append(row)
    rows.sort(key=lambda r: (r["name"].lower(), r["form"], r["strength"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, HEADER, lineterminator="\n")
        writer.writeheader()
        for i, row in enumerate(rows, 1):
            writer.writerow({"id": i, **row})
    combos = sum(1 for r in rows if r["short_composition2"])
    print(f"wrote {len(rows)} products ({combos} with a second ingredient) to {args.out}")


if __name__ == "__main__":
    main()
