#!/usr/bin/env python3
"""Derive suites/data/medical-vocabulary.json from its two sources.

Usage: derive-medical-vocabulary.py SOURCE_DIR > medical-vocabulary.json

SOURCE_DIR holds `faker_healthcare_diseases.json` (the disease, lab and procedure vocabulary of
the PyPI package faker-healthcare-provider 2.5.0) and
`icd10cm_2026_chapters_blocks_categories.tsv` (ICD-10-CM 2026 chapters, blocks and
three-character categories, extracted from the PyPI package simple-icd-10-cm 1.5.0). See
medical-vocabulary.NOTICE.md for their licences.

What this script adds to the sources is stated in the tables below: the 11 disease categories
(groups of ICD-10-CM chapters and blocks), display names of the lab tests, the procedures that
fit each specialty (chosen from the source's procedure list), and the sex and age range of the
few diseases that need one. Everything else is copied. The output is deterministic.
"""

import csv
import json
import sys
from pathlib import Path

# The 11 categories, after the AMNESIA benchmark's 11 disease categories, each a union of
# ICD-10-CM chapters or blocks (given by their code ranges as the TSV writes them). Chapters with
# one or two diseases in the vocabulary join the category of the organ system they concern.
CATEGORIES = [
    ("cancer", "cancer", ["C00-D49"]),
    ("infectious-immune", "infectious and immune", ["A00-B99", "D80-D89", "U00-U49"]),
    ("blood", "blood", ["D50-D53", "D55-D59", "D60-D64", "D65-D69", "D70-D77"]),
    ("endocrine-metabolic", "endocrine and metabolic", ["E00-E89"]),
    ("mental-health", "mental health", ["F01-F99"]),
    ("nervous-system-senses", "nervous system and senses", ["G00-G99", "H00-H59", "H60-H95"]),
    ("cardiovascular", "cardiovascular", ["I00-I99", "Q20-Q28"]),
    ("respiratory", "respiratory", ["J00-J99"]),
    ("digestive", "digestive", ["K00-K95", "R10-R19"]),
    ("musculoskeletal-skin", "musculoskeletal and skin", ["L00-L99", "M00-M99"]),
    ("genitourinary-pregnancy", "genitourinary and pregnancy", ["N00-N99", "O00-O9A", "Q60-Q64"]),
]

# Display names of the source's lab keys. INR is a ratio: its unit is left empty.
LAB_NAMES = {
    "haemoglobin": "haemoglobin",
    "wbc": "white cell count",
    "platelets": "platelet count",
    "ferritin": "ferritin",
    "inr": "INR",
    "sodium": "sodium",
    "potassium": "potassium",
    "urea": "urea",
    "creatinine": "creatinine",
    "egfr": "eGFR",
    "alt": "ALT",
    "ast": "AST",
    "alkaline_phosphatase": "alkaline phosphatase",
    "bilirubin_total": "total bilirubin",
    "albumin": "albumin",
    "fasting_glucose": "fasting glucose",
    "hba1c": "HbA1c",
    "tsh": "TSH",
    "free_t4": "free T4",
    "total_cholesterol": "total cholesterol",
    "ldl": "LDL cholesterol",
    "hdl": "HDL cholesterol",
    "triglycerides": "triglycerides",
    "crp": "CRP",
}

# Procedures (from the source's list) that fit a specialty's patients.
SPECIALTY_PROCEDURES = {
    "Allergy": ["Blood Test"],
    "Cardiology": ["Electrocardiogram (ECG)", "Echocardiogram", "Cardiac Catheterization"],
    "Critical Care": ["Blood Test", "X-Ray"],
    "Dermatology": ["Skin Biopsy"],
    "Endocrinology": ["Blood Test", "Ultrasound"],
    "Gastroenterology": ["Endoscopy", "Colonoscopy", "Ultrasound"],
    "General Surgery": ["CT Scan", "Ultrasound"],
    "Gynecology": ["Ultrasound"],
    "Hematology": ["Blood Test", "Bone Marrow Biopsy"],
    "Infectious Disease": ["Blood Test", "X-Ray"],
    "Internal Medicine": ["Blood Test"],
    "Nephrology": ["Blood Test", "Ultrasound", "Kidney Biopsy"],
    "Neurology": ["MRI Scan", "CT Scan"],
    "Obstetrics": ["Ultrasound", "Blood Test"],
    "Oncology": ["Biopsy", "CT Scan", "Chemotherapy", "Radiation Therapy"],
    "Ophthalmology": ["Ultrasound"],
    "Orthopedics": ["X-Ray", "MRI Scan", "Physical Therapy Session"],
    "Otolaryngology": ["Endoscopy"],
    "Pain Medicine": ["Nerve Block", "Trigger Point Injection", "Epidural Injection"],
    "Pediatrics": ["X-Ray"],
    "Psychiatry": ["Blood Test", "Electrocardiogram (ECG)"],
    "Pulmonology": ["X-Ray", "CT Scan", "Bronchoscopy"],
    "Rheumatology": ["Blood Test", "X-Ray", "Joint Aspiration"],
    "Urology": ["Ultrasound", "CT Scan"],
    "Vascular Medicine": ["Ultrasound"],
    "Vascular Surgery": ["Ultrasound", "CT Scan", "Angioplasty"],
}

# Diseases whose typical procedures differ from their specialty's, by ICD-10 code.
DISEASE_PROCEDURES = {
    "C50.919": ["Biopsy", "Mastectomy", "Lumpectomy"],
    "C61": ["Biopsy", "Prostatectomy"],
    "C34.90": ["Bronchoscopy", "CT Scan", "Biopsy"],
    "C18.9": ["Colonoscopy", "Colectomy"],
    "C25.9": ["CT Scan", "Whipple Procedure"],
    "C64.9": ["CT Scan", "Nephrectomy"],
    "C67.9": ["Biopsy", "CT Scan"],
    "C73": ["Biopsy", "Thyroidectomy"],
    "C71.9": ["MRI Scan", "Biopsy"],
    "C44.91": ["Skin Biopsy", "Excision"],
    "C44.92": ["Skin Biopsy", "Excision"],
    "C43.9": ["Skin Biopsy", "Excision", "Immunotherapy"],
    "K35.80": ["CT Scan", "Appendectomy"],
    "K81.0": ["Ultrasound", "Cholecystectomy"],
    "K74.60": ["Ultrasound", "Liver Biopsy"],
    "L03.90": ["Blood Test", "Incision and Drainage"],
    "H40.9": ["Glaucoma Surgery"],
    "E11.319": ["Vitrectomy"],
    "J03.90": ["Tonsillectomy"],
    "J32.9": ["CT Scan", "Sinus Surgery"],
    "H91.90": ["Cochlear Implant"],
    "H66.90": ["Tympanoplasty"],
    "J90": ["X-Ray", "Thoracentesis"],
    "G35": ["MRI Scan", "Lumbar Puncture"],
    "N18.9": ["Blood Test", "Ultrasound", "Hemodialysis"],
    "M17.9": ["X-Ray", "Knee Replacement", "Physical Therapy Session"],
}

# Diseases of one sex only, and diseases outside the default adult age range (18-90).
FEMALE = {"C50.919", "C56.9", "C54.1", "E28.2", "N80.9", "D25.9", "O14.90", "O24.419"}
MALE = {"C61", "N40.0", "N52.9"}
AGES = {
    "J05.0": [1, 5],
    "J21.9": [1, 2],
    "O14.90": [18, 44],
    "O24.419": [18, 44],
    "E28.2": [18, 50],
    "N80.9": [18, 50],
}

# Symptoms keep capitals only where a name needs them.
PROPER = {"raynaud's": "Raynaud's"}


def three_char(code):
    return code.split(".")[0]


def in_range(cat, rng):
    first, _, last = rng.partition("-")
    return first <= cat <= (last or first)


def symptom(text):
    words = text.lower().split(" ")
    return " ".join(PROPER.get(w, w) for w in words)


def main():
    src = Path(sys.argv[1])
    faker = json.loads((src / "faker_healthcare_diseases.json").read_text(encoding="utf-8"))
    icd = {}
    ranges = {}
    with open(src / "icd10cm_2026_chapters_blocks_categories.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["level"] == "category":
                icd[row["code"]] = row["description"]
            elif row["level"] == "block":
                ranges[row["code"]] = row["description"].rsplit(" (", 1)[0]
            else:
                rng = row["description"].rsplit("(", 1)[1].rstrip(")")
                ranges[rng] = row["description"].rsplit(" (", 1)[0]

    categories = []
    for cid, name, rngs in CATEGORIES:
        categories.append({
            "id": cid,
            "name": name,
            "icd": [{"range": r, "title": ranges[r]} for r in rngs],
        })

    labs = []
    for key, d in faker["lab_definitions"].items():
        labs.append({
            "id": key,
            "name": LAB_NAMES[key],
            "unit": "" if d["unit"] == "ratio" else d["unit"],
            "decimals": d["decimals"],
            "low": d["ref_low"],
            "high": d["ref_high"],
            "min": d["min_value"],
            "max": d["max_value"],
        })

    non_drug = set(faker["non_drug_interventions"])
    effects = faker["condition_lab_effects"]
    diseases = []
    dropped = []
    seen = set()
    for d in faker["diseases"]:
        code = d["icd10"]
        drugs = [m for m in d["medications"] if m not in non_drug]
        if code in seen:
            dropped.append(f"{d['name']} ({code}): same code as an earlier disease")
            continue
        if len(drugs) < 2:
            dropped.append(f"{d['name']} ({code}): fewer than two drugs")
            continue
        seen.add(code)
        cat3 = three_char(code)
        cats = [c["id"] for c in categories
                if any(in_range(cat3, r["range"]) for r in c["icd"])]
        assert len(cats) == 1, (code, cats)
        entry = {
            "name": d["name"],
            "code": code,
            "icd_title": icd[cat3],
            "category": cats[0],
            "specialty": d["medical_specialty"],
            "symptoms": [symptom(s) for s in d["symptoms"]],
            "drugs": drugs,
            "labs": effects.get(code, {}),
            "procedures": DISEASE_PROCEDURES.get(code, SPECIALTY_PROCEDURES[d["medical_specialty"]]),
        }
        if code in FEMALE:
            entry["sex"] = "female"
        if code in MALE:
            entry["sex"] = "male"
        if code in AGES:
            entry["ages"] = AGES[code]
        diseases.append(entry)

    procedures = set(faker["medical_procedures"])
    for d in diseases:
        for p in d["procedures"]:
            assert p in procedures, p

    out = {
        "about": "Medical vocabulary of the lethe medical suite generator. Not for clinical use. "
                 "Derived by derive-medical-vocabulary.py; see medical-vocabulary.NOTICE.md.",
        "dropped": dropped,
        "categories": categories,
        "labs": labs,
        "diseases": diseases,
    }
    # One entry per line: compact, and a change to one disease is a one-line diff.
    line = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    parts = []
    for key, value in out.items():
        if isinstance(value, list):
            items = ",\n".join("  " + line(v) for v in value)
            parts.append(f" {line(key)}:[\n{items}\n ]")
        else:
            parts.append(f" {line(key)}:{line(value)}")
    sys.stdout.write("{\n" + ",\n".join(parts) + "\n}\n")


if __name__ == "__main__":
    main()
