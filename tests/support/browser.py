"""What the browser tests share: where screenshots go, timeouts, and checks that read the
page as a person does (buttons cut short, text contrast), run inside Chromium."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ARTIFACTS = (
    Path(os.environ.get("MW_ARTIFACTS") or Path(__file__).resolve().parents[2] / "artifacts")
    / "browser"
)
UI_TIMEOUT = 30_000  # ms; generous for a loaded CI machine, the happy path takes ~1 s


def save_artifact(page: Any, name: str) -> Path:
    """A screenshot at a fixed moment, kept as a CI artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    return path


_BUTTONS_FIT = """
root => {
  const box = root.getBoundingClientRect();
  const bad = [];
  for (const b of root.querySelectorAll("button, input, select")) {
    const r = b.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;  // not shown
    const cut = b.scrollWidth > b.clientWidth + 1;
    const outside = r.left < box.left - 1 || r.right > box.right + 1;
    if (cut || outside) bad.push(`${b.className}: ${b.innerText || b.value}`);
  }
  return bad;
}
"""


def buttons_fit(panel: Any) -> list[str]:
    """Controls of ``panel`` whose text is cut or that stick out of it (empty: none)."""
    result: list[str] = panel.evaluate(_BUTTONS_FIT)
    return result


_CONTRAST = """
root => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (fg, bg) => ({
    r: fg.r * fg.a + bg.r * (1 - fg.a), g: fg.g * fg.a + bg.g * (1 - fg.a),
    b: fg.b * fg.a + bg.b * (1 - fg.a), a: 1,
  });
  const background = (node) => {
    const layers = [];
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const bad = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el || el.closest("button:disabled, [hidden], style")) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const bg = background(el);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const text = t.textContent.trim().slice(0, 30);
    if (ratio < 4.5) bad.push(`${ratio.toFixed(2)}:1 ${el.className} "${text}"`);
  }
  return bad;
}
"""


def contrast_failures(panel: Any) -> list[str]:
    """Text in ``panel`` under 4.5:1 against what is behind it (disabled controls aside)."""
    result: list[str] = panel.evaluate(_CONTRAST)
    return result
