"""Who the customers are: the measured marginals of age, purchase and merchant, and the sampling helpers."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from defaultrisk.schema import MERCHANT_GROUPS, NAME_IN_EMAIL

# Rows per merchant category among 10,000 real customers; the skew is part of what a model must cope with.
MERCHANT_CATEGORY_COUNTS = {
    "Automotive Parts & Accessories": 79,
    "Wheels & Tires": 10,
    "Diversified children products": 303,
    "Children Clothes & Nurturing products": 143,
    "Children toys": 48,
    "Youthful Shoes & Clothing": 1231,
    "General Shoes & Clothing": 435,
    "Adult Shoes & Clothing": 20,
    "Underwear": 9,
    "Diversified electronics": 217,
    "Electronic equipment & Related accessories": 91,
    "Household electronics (whitegoods/appliances)": 15,
    "Car electronics": 5,
    "Office machines & Related accessories (excl. computers)": 2,
    "Diversified entertainment": 3833,
    "Books & Magazines": 916,
    "Video Games & Related accessories": 75,
    "Music & Movies": 15,
    "Diversified erotic material": 63,
    "Erotic Clothing & Accessories": 9,
    "Sex toys": 5,
    "Food & Beverage": 26,
    "Tobacco": 8,
    "Dietary supplements": 324,
    "Prescription optics": 96,
    "Body & Hair Care": 91,
    "Diversified Health & Beauty products": 85,
    "Cosmetics": 60,
    "Personal care & Body improvement": 40,
    "Fragrances": 36,
    "Pharmaceutical products": 35,
    "Pet supplies": 130,
    "Decoration & Art": 66,
    "Diversified Home & Garden products": 66,
    "Tools & Home improvement": 47,
    "Furniture": 30,
    "Kitchenware": 15,
    "Safety products": 7,
    "Plants & Flowers": 5,
    "Cleaning & Sanitary": 2,
    "Dating services": 60,
    "Digital services": 29,
    "Travel services": 14,
    "Event tickets": 2,
    "Jewelry & Watches": 96,
    "Non": 7,
    "Diversified Jewelry & Accessories": 6,
    "Bags & Wallets": 3,
    "Concept stores & Miscellaneous": 437,
    "Sports gear & Outdoor": 356,
    "Prints & Photos": 173,
    "Hobby articles": 93,
    "Collectibles": 15,
    "Costumes & Party supplies": 10,
    "Musical Instruments & Equipment": 6,
}
GROUP_OF_CATEGORY = {cat: group for group, cats in MERCHANT_GROUPS.items() for cat in cats}

NAME_IN_EMAIL_SHARES = {
    "F+L": 0.4031,
    "no_match": 0.1732,
    "L1+F": 0.1594,
    "F": 0.0950,
    "Nick": 0.0814,
    "F1+L": 0.0734,
    "L": 0.0144,
    "Initials": 0.0001,
}

# Age drawn uniformly inside bands with the real band shares: median 34, few customers over 70.
AGE_BAND_EDGES = (18, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 80, 95)
AGE_BAND_SHARES = (
    0.0673,
    0.1641,
    0.1449,
    0.1363,
    0.1233,
    0.1040,
    0.0982,
    0.0638,
    0.0443,
    0.0269,
    0.0155,
    0.0096,
    0.0018,
)
# Share of purchases per hour of the day: quiet at night, busiest in the evening.
HOUR_SHARES = (
    0.0116,
    0.0052,
    0.0036,
    0.0025,
    0.0037,
    0.0047,
    0.0110,
    0.0267,
    0.0431,
    0.0529,
    0.0533,
    0.0600,
    0.0628,
    0.0559,
    0.0617,
    0.0614,
    0.0601,
    0.0625,
    0.0675,
    0.0782,
    0.0744,
    0.0698,
    0.0456,
    0.0218,
)
SECONDS_PER_HOUR = 3600


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def ordinal(latent: np.ndarray, shares: Sequence[float], codes: Sequence[int]) -> np.ndarray:
    """Cut a standard normal latent into ordered codes with the given shares, keeping its ordering."""
    normal = NormalDist()
    cumulative = np.cumsum(shares)[:-1] / np.sum(shares)
    cuts = np.array([normal.inv_cdf(float(c)) for c in cumulative])
    return np.asarray(codes)[np.searchsorted(cuts, latent)]


def lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _pick(rng: np.random.Generator, n: int, weights: dict[str, float]) -> np.ndarray:
    values = np.asarray(list(weights), dtype=object)
    p = np.asarray(list(weights.values()), dtype=float)
    return values[rng.choice(len(values), size=n, p=p / p.sum())]


def draw_age(rng: np.random.Generator, n: int) -> np.ndarray:
    band = rng.choice(len(AGE_BAND_SHARES), size=n, p=np.asarray(AGE_BAND_SHARES) / sum(AGE_BAND_SHARES))
    low = np.asarray(AGE_BAND_EDGES[:-1])[band]
    high = np.asarray(AGE_BAND_EDGES[1:])[band]
    return rng.integers(low, high)


def _time_hours(rng: np.random.Generator, n: int) -> np.ndarray:
    hour = rng.choice(len(HOUR_SHARES), size=n, p=np.asarray(HOUR_SHARES) / sum(HOUR_SHARES))
    second = rng.integers(1, SECONDS_PER_HOUR, size=n)
    return (hour * SECONDS_PER_HOUR + second) / SECONDS_PER_HOUR


def purchase_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The purchase itself: merchant category and group, name in the email address, time of day."""
    category = _pick(rng, n, {c: MERCHANT_CATEGORY_COUNTS[c] for c in GROUP_OF_CATEGORY})
    return {
        "merchant_category": category,
        "merchant_group": np.asarray([GROUP_OF_CATEGORY[c] for c in category], dtype=object),
        "name_in_email": _pick(rng, n, {v: NAME_IN_EMAIL_SHARES[v] for v in NAME_IN_EMAIL}),
        "time_hours": _time_hours(rng, n),
    }
