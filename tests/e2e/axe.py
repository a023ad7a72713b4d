"""axe-core (self-hosted from npm, `node_modules/axe-core`) run inside a Playwright page.

The browser context must be created with `bypass_csp=True`: axe is injected as a script the
page's Content-Security-Policy would (rightly) refuse. It is a test tool, never served to users.
"""
from __future__ import annotations

from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe_path() -> str:
    if not AXE.exists():
        pytest.skip("axe-core is not installed (run `npm ci`; `make test` does)")
    return str(AXE)


def serious_violations(page) -> list[str]:
    """Serious and critical WCAG 2.x A/AA violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=axe_path())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || ''))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in result if v["impact"] in SERIOUS]
