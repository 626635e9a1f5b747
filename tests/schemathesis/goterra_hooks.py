"""Schemathesis hooks for tests/schemathesis.rs.

The run is authenticated as the bootstrap admin (uid `admin`). Every generated or linked request
is allowed except those that name that admin in their path: replacing its API key, changing its
password, demoting or deleting it are legitimate operations (tested on other users), but would
revoke the credential of the rest of the run.
"""

import schemathesis

BOOTSTRAP_ADMIN = "admin"


@schemathesis.hook
def filter_path_parameters(ctx, path_parameters):
    return not path_parameters or BOOTSTRAP_ADMIN not in path_parameters.values()


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # Links of the stateful phase fill parameters from answers (`uid` of GET /auth/me) without
    # the filter above: point those at a user that does not exist instead.
    for name, value in list((case.path_parameters or {}).items()):
        if value == BOOTSTRAP_ADMIN:
            case.path_parameters[name] = "not-the-bootstrap-admin"


@schemathesis.hook
def map_query(ctx, query):
    # The store's `?wait=` long-polls for up to 600 s (larger values are capped, as documented):
    # keep generated waits short so that a run stays within CI's time.
    if query and isinstance(query.get("wait"), int) and query["wait"] > 1:
        query["wait"] = 1
    return query
