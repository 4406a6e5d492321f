"""The annotation page's script is native ES modules from /static (the CSP allows 'self' scripts only, no
bundler): every module main.js reaches is served as JavaScript, and none is left unreachable."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r'^import\s[^;]*?from\s+"(\./[\w.-]+\.js)";', re.M)


def test_every_module_the_page_imports_is_served_as_javascript(client):
    template = (ROOT / "templates/annotation/task.html").read_text()
    assert "<script type=\"module\" src=\"{{ url_for('static', path='js/annotate/main.js') }}\"></script>" in template
    seen, todo = set(), ["main.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/static/js/annotate/{name}")
        assert response.status_code == 200, name
        assert "javascript" in response.headers["content-type"], name  # browsers refuse modules of other types
        todo += [target.removeprefix("./") for target in IMPORT.findall(response.text)]
    assert seen == {p.name for p in (ROOT / "static/js/annotate").glob("*.js")}
