"""Sign-in, sign-out and who am I."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from ragline.auth import signin
from ragline.auth.entra import SAFE_METHODS, allowed_origins, check_origin
from ragline.auth.ratelimit import Limit
from ragline.auth.schemas import Me
from ragline.auth.sessions import SessionStoreUnavailable
from ragline.deps import CurrentPrincipal, CurrentUser, SessionDep
from ragline.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized
from ragline.kit.responses import RATE_LIMITED, SIGNED_IN, errors_for
from ragline.lifespan import app_state

router = APIRouter(tags=["auth"])


class SigninNotConfigured(NotFound):
    def default_detail(self) -> str:
        return "Entra ID sign-in is not configured (development identity in use)."


class ProfilePictureNotFound(NotFound):
    def default_detail(self) -> str:
        return "No profile picture."


def _services(request: Request) -> signin.SigninServices:
    services = app_state(request).auth.signin
    if services is None:
        raise SigninNotConfigured()
    return services


@router.get(
    "/signin",
    status_code=302,
    response_class=RedirectResponse,
    responses=errors_for(SigninNotConfigured, RATE_LIMITED, ServiceUnavailable),
)
async def sign_in(request: Request) -> RedirectResponse:
    """Redirect to Entra ID (authorization code + PKCE, state, nonce)."""
    services = _services(request)
    client = request.client.host if request.client else "unknown"
    await app_state(request).auth.rate_limits.hit(Limit.SIGNIN, f"ip:{client}")
    try:
        url = await signin.begin(services=services)
    except SessionStoreUnavailable as exc:
        raise ServiceUnavailable("Sign-in is unavailable (session store down).") from exc
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get(
    "/redirect",
    status_code=302,
    response_class=RedirectResponse,
    responses=errors_for(SigninNotConfigured, Unauthorized, Forbidden, ServiceUnavailable),
)
async def redirect(
    request: Request,
    session: SessionDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> RedirectResponse:
    """Entra's redirect back: checks state, exchanges the code, validates the ID token,
    starts a new session (a previous one is ended: the id changes at every sign-in)."""
    services = _services(request)
    settings = services.settings
    try:
        session_id = await signin.finish(
            services=services, db=session, state=state, code=code, error=error
        )
        previous = request.cookies.get(settings.session_cookie_name)
        if previous:
            await services.sessions.delete(previous)
    except SessionStoreUnavailable as exc:
        raise ServiceUnavailable("Sign-in is unavailable (session store down).") from exc
    response = RedirectResponse(settings.frontend_url or "/me", status_code=302)
    response.set_cookie(
        settings.session_cookie_name,
        session_id,
        max_age=int(settings.session_absolute_hours * 3600),
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
        path="/",
    )
    return response


_LOGOUT = errors_for(SigninNotConfigured, Forbidden, ServiceUnavailable)


@router.post("/logout", status_code=303, response_class=RedirectResponse, responses=_LOGOUT)
@router.get("/logout", status_code=303, response_class=RedirectResponse, responses=_LOGOUT)
async def logout(request: Request) -> RedirectResponse:
    """End the session, then sign out at Entra (its end-session endpoint), which returns
    to ``FRONTEND_URL`` (straight there when Entra cannot be reached). ``GET`` is kept for
    the replaced system's frontend."""
    services = _services(request)
    settings = services.settings
    session_id = request.cookies.get(settings.session_cookie_name)
    if request.method not in SAFE_METHODS and session_id:
        check_origin(request, allowed_origins(settings))
    if session_id:
        try:
            await services.sessions.delete(session_id)
        except SessionStoreUnavailable as exc:
            raise ServiceUnavailable("Sign-out is unavailable (session store down).") from exc
    target = settings.frontend_url or "/"
    try:
        metadata = await signin.provider_metadata(services=services, doing="sign out")
    except signin.IdentityProviderUnavailable:  # signed out of ragline: that will do
        metadata = None
    if metadata is not None and metadata.end_session_endpoint:
        query = {"client_id": settings.client_id or ""}
        if settings.frontend_url:
            query["post_logout_redirect_uri"] = settings.frontend_url
        target = f"{metadata.end_session_endpoint}?{urlencode(query)}"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
    )
    return response


@router.get("/me", response_model=Me, responses=errors_for(SIGNED_IN))
async def me(principal: CurrentPrincipal, user: CurrentUser) -> Me:
    """The signed-in user, their groups and ragline roles (from the session or the token;
    Graph is not called)."""
    return Me(
        id=user.id,
        tenant_id=user.tenant_id,
        subject=user.subject,
        name=user.name,
        email=user.email,
        groups=list(principal.groups),
        roles=sorted(principal.roles),
        auth=principal.method.value,
    )


@router.get(
    "/profile-picture",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}},
        **errors_for(SIGNED_IN, ProfilePictureNotFound),
    },
)
async def profile_picture(request: Request, user: CurrentUser) -> Response:
    """The photo fetched from Microsoft Graph at sign-in (cached); 404 when there is none."""
    services = app_state(request).auth.signin
    photo = None
    if services is not None:
        try:
            photo = await services.photos.get(str(user.id))
        except Exception as exc:  # Redis down: the photo is simply not available
            raise ServiceUnavailable("Profile pictures are unavailable.") from exc
    if photo is None:
        raise ProfilePictureNotFound()
    return Response(
        photo.content,
        media_type=photo.media_type,
        headers={"Cache-Control": "private, max-age=3600"},
    )
