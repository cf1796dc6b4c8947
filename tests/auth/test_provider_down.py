"""Entra unreachable (nothing listens at its authority): sign-in answers 503
``IdentityProviderUnavailable``, sign-out still signs out of ragline."""

from __future__ import annotations

import pytest

from ragline.config import Settings
from tests.auth.conftest import CLIENT_ID, CLIENT_SECRET, FRONTEND, RAGLINE, TENANT, entra_app
from tests.services import free_port


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no storage involved
async def test_signin_with_entra_unreachable_is_a_503(settings: Settings) -> None:
    authority = f"http://127.0.0.1:{free_port()}"
    entra = settings.model_copy(
        update={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "tenant_id": TENANT,
            "redirect_uri": f"{RAGLINE}/redirect",
            "entra_authority_host": authority,
            "rate_limit_signin": "",
        }
    )
    async with entra_app(entra) as (client, _):
        signin = await client.get("/signin")
        logout = await client.get("/logout")
    assert signin.status_code == 503
    assert signin.json() == {
        "error": "IdentityProviderUnavailable",
        "detail": f"The identity provider ({authority}) could not be reached to start the "
        "sign-in; try again in a moment.",
    }
    assert logout.status_code == 303 and logout.headers["location"] == FRONTEND
