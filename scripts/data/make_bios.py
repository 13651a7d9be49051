#!/usr/bin/env python3
"""Writes www/public/bios.json: a small *synthetic* set of one-line biographies written for
latentlab, the paper's Bios setting (De-Arteaga et al.) in miniature, for the steering page
and tests.

Each biography has a profession (the main task, y) and a gender (the concept, z: 0 = female,
1 = male, as the affine-steering code encodes Bios). Gender shows only through first names and
pronouns; the profession through a job title and profession-specific activities. As in the
real Bios data, some professions are skewed towards one gender (nurse, surgeon…), so a
profession classifier can learn to use gender and shows a TPR-gap that steering should shrink.

Deterministic (fixed seed); needs only the Python standard library:

    python3 scripts/data/make_bios.py
"""
import json
import os
import random

SEED = 20240721
PER_PROFESSION = 50

FEMALE = ["Maria", "Emily", "Sarah", "Aisha", "Mei", "Olivia", "Hannah", "Sofia", "Grace",
          "Fatima", "Laura", "Priya", "Chloe", "Anna", "Julia", "Nora", "Elena", "Zoe", "Lucy",
          "Rachel"]
MALE = ["James", "David", "Ahmed", "Wei", "Lucas", "Daniel", "Omar", "Thomas", "Mateo",
        "Ravi", "Peter", "Samuel", "Noah", "Ivan", "Marco", "Kenji", "Adam", "Leo", "Henry",
        "Paul"]
PRONOUNS = {0: ("She", "her"), 1: ("He", "his")}
# A second binary concept, unrelated to profession by construction: where the person lives
# (0 = a European city, 1 = elsewhere), drawn uniformly.
CITIES = {0: ["Leeds", "Lyon", "Dublin", "Porto", "Glasgow", "Vienna"],
          1: ["Boston", "Toronto", "Melbourne", "Austin", "Osaka", "Denver"]}

# Four work domains, each with two professions skewed towards opposite genders, as in the
# real Bios data. A biography names the profession (title + a specific activity) with
# probability TITLED; otherwise it says only what the domain shares ("works at a hospital"),
# which leaves the profession ambiguous: there a classifier can only guess, and a biased one
# guesses by gender. That is what gives the TPR-gap that steering should shrink.
TITLED = 0.6

DOMAINS = {
    "hospital": [
        "{Pro} works long shifts at the city hospital",
        "{Pro} spends {pos} days on the wards with patients",
        "{Pro} is on call at the hospital most weekends"],
    "school": [
        "{Pro} works at a secondary school",
        "{Pro} spends {pos} days with pupils and parents",
        "{Pro} has worked in schools for fifteen years"],
    "software": [
        "{Pro} works for a software company",
        "{Pro} spends {pos} days in front of a screen on product teams",
        "{Pro} works on apps used by millions of people"],
    "food": [
        "{Pro} works with food every day",
        "{Pro} spends {pos} days thinking about meals and ingredients",
        "{Pro} works in the restaurant business"],
}

# profession → (domain, share of women, titles, specific activities)
PROFESSIONS = {
    "nurse": ("hospital", 0.85, ["nurse", "registered nurse"], [
        "{Pro} dresses wounds and gives injections",
        "{Pro} looks after newborn babies and their parents"]),
    "surgeon": ("hospital", 0.15, ["surgeon", "orthopaedic surgeon"], [
        "{Pro} operates on knees and hips every week",
        "{Pro} performs heart operations"]),
    "teacher": ("school", 0.85, ["teacher", "primary school teacher"], [
        "{Pro} teaches reading and arithmetic to young children",
        "{Pro} marks homework every evening"]),
    "principal": ("school", 0.2, ["head teacher", "school principal"], [
        "{Pro} runs the school and manages its budget",
        "{Pro} hires staff and leads the school board meetings"]),
    "designer": ("software", 0.8, ["UX designer", "interaction designer"], [
        "{Pro} sketches user interfaces and runs usability studies",
        "{Pro} designs screens and icons"]),
    "software engineer": ("software", 0.15, ["software engineer", "backend developer"], [
        "{Pro} writes code for distributed databases",
        "{Pro} maintains compilers and developer tools"]),
    "dietitian": ("food", 0.85, ["dietitian", "nutritionist"], [
        "{Pro} plans healthy diets for patients with diabetes",
        "{Pro} advises clients on nutrition"]),
    "chef": ("food", 0.2, ["chef", "head chef"], [
        "{Pro} runs the kitchen of a small restaurant",
        "{Pro} creates seasonal menus"]),
}


def main():
    rng = random.Random(SEED)
    items = []
    for y, (profession, (domain, share_female, titles, activities)) in enumerate(PROFESSIONS.items()):
        n_female = round(PER_PROFESSION * share_female)
        genders = [0] * n_female + [1] * (PER_PROFESSION - n_female)
        for z in genders:
            name = rng.choice(FEMALE if z == 0 else MALE)
            pro, pos = PRONOUNS[z]
            region = rng.randrange(2)
            city = rng.choice(CITIES[region])
            if rng.random() < TITLED:
                title = rng.choice(titles)
                article = "an" if title[0] in "aeiouAEIOU" else "a"
                activity = rng.choice(activities).format(Pro=pro, pos=pos)
                text = f"{name} is {article} {title} in {city}. {activity}."
            else:
                activity = rng.choice(DOMAINS[domain]).format(Pro=pro, pos=pos)
                text = f"{name} lives in {city}. {activity}."
            items.append({"text": text, "y": y, "z": z, "region": region, "domain": domain})
    rng.shuffle(items)
    data = {
        "description": "Synthetic one-line biographies written for latentlab from templates "
                       "(not real people, not the Bios data set): profession is the main task, "
                       "gender the concept; the two professions of each work domain are skewed towards "
                       "opposite genders, and 40% of biographies name only the domain.",
        "generator": "scripts/data/make_bios.py",
        "synthetic": True,
        "concept": {"name": "gender", "labels": ["female", "male"]},
        # Concepts a page may erase: item key → labels for 0 and 1.
        "concepts": [
            {"key": "z", "name": "gender", "labels": ["female", "male"]},
            {"key": "region", "name": "region", "labels": ["Europe", "elsewhere"]},
        ],
        "task": {"name": "profession", "labels": list(PROFESSIONS)},
        "items": items,
    }
    path = os.path.join("www", "public", "bios.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(items)} biographies")


if __name__ == "__main__":
    main()
