"""The queries the services run, each a template under sql/queries/ with its values quoted by the ``ident``
and ``literal`` filters, so no service pastes text into SQL."""

from __future__ import annotations

from onesift.render import render_sql
from onesift.settings import Settings


def query(name: str, settings: Settings, /, **values) -> str:
    """The SQL of sql/queries/NAME.sql.j2 for ``settings``, with ``values``."""
    return render_sql(f"queries/{name}.sql.j2", **settings.context(), **values)
