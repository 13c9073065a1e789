"""Where the dbt DAGs' OpenLineage events go: the `lineage` settings (lineage.py applies them).

    lineage:
      enabled: true
      url: http://marquez.internal:5000   # an HTTP receiver; events are POSTed to <url>/<endpoint>
      api_key_conn_id: marquez_api        # optional: the connection whose password is its API key
    # or, any transport the OpenLineage client knows (HTTP with auth, Kafka, several at once):
      conn_id: openlineage_default        # the connection whose extra holds the client config

Off by default: then Airflow's OpenLineage provider need not be installed, and is turned off where
it is. An API key is a secret, so it lives in an Airflow connection, never in the URL here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field

from include.blueprint.runtime import Section as _Section

PROVIDER = "apache-airflow-providers-openlineage"


class LineageSettings(_Section):
    enabled: bool = False
    # An HTTP receiver (Marquez, OpenMetadata, DataHub, ...), without credentials in it.
    url: str | None = Field(default=None, min_length=1)
    endpoint: str = Field(default="api/v1/lineage", min_length=1)
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    api_key_conn_id: str | None = Field(default=None, min_length=1)
    # Instead of url: Airflow's [openlineage] config_conn_id, a connection whose extra is the
    # OpenLineage client config ({"transport": {...}}).
    conn_id: str | None = Field(default=None, min_length=1)
    # The namespace of the jobs (DAGs and tasks); dbt's datasets are named after the warehouse.
    namespace: str = Field(default="default", min_length=1)

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong and the fix) for every mistake visible in the settings alone."""
        if not self.enabled:
            return []
        if (self.url is None) == (self.conn_id is None):
            return [("url", "set either url (an HTTP receiver) or conn_id (a connection holding the config), not both")]
        if self.conn_id is not None:
            return (
                [("api_key_conn_id", "only with url; put the auth in conn_id's config")] if self.api_key_conn_id else []
            )
        parts = urlsplit(self.url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return [("url", "not an http(s) URL; e.g. http://marquez:5000 (events go to <url>/<endpoint>)")]
        if parts.username or parts.password or parts.query:
            return [("url", "holds credentials; keep the API key in a connection named by api_key_conn_id")]
        return []
