"""The blind voting web app: server-rendered HTML, no JavaScript, no CDN.

    app = create_app(project.store, token="organiser-secret")
    uvicorn.run(app, host="127.0.0.1", port=8765)

Voter pages: `/` (a question and two anonymous answers), `POST /vote`, `/result/<ballot>` (names revealed),
`/join?key=<judge key>` (tags the voter as a judge), `/invite/<code>` (an organiser's one-voter invite code).
Organiser pages need the token (`?token=` or `Authorization: Bearer`): `/organiser` (live standings),
`/organiser/votes.csv`.

Safety: the session cookie is a random voter id and role signed by the server (HttpOnly, SameSite=Strict);
every form carries the voter's CSRF token (an HMAC of their id), checked on POST together with the Origin
header; the vote page holds only an opaque ballot id, never a candidate name; the database refuses a second vote
on the same pair. A visitor who never votes leaves no row: see `votes.Dealer`. With `invite_only`, only voters
who came through an invite code (or the judge link) may vote.
"""

from __future__ import annotations

import hmac
import io
import math
from pathlib import Path

from fastapi import FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from underdog.arena import store as tables
from underdog.arena import votes as db
from underdog.arena.standings import reward_text, standings
from underdog.errors import ConfigError
from underdog.store import Store
from underdog.web import SecurityHeaders, derived_key, same_origin, token_ok

HERE = Path(__file__).parent
COOKIE = "underdog_voter"


def judge_key(token: str) -> str:
    """The key in the judges' invitation link, derived from the organiser token."""
    return derived_key(token, "underdog-arena-judge")


def create_app(store: Store, token: str, weights: dict[str, float] | None = None, rounds: int = 100,
               title: str = "underdog arena", refresh_s: int = 15, invite_only: bool = False,
               ballot_ttl_s: float = 3600.0) -> FastAPI:
    """The arena over `store`'s arena tables; `token` guards the organiser pages and signs the voters' cookies."""
    if len(token) < 8:
        raise ConfigError("the organiser token ($UNDERDOG_ARENA_TOKEN) must have at least 8 characters "
                          "(or leave it unset for a random one)")
    sessions, dealer = db.Sessions(token), db.Dealer(store, ttl_s=ballot_ttl_s)
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.auto_reload = False  # no stat() of every template on every page
    templates.env.globals.update(title=title, pct=lambda x: "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%",
                                 reward_text=reward_text)

    app.add_middleware(SecurityHeaders)

    def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def message(request: Request, status: int, heading: str, text: str) -> HTMLResponse:
        return page(request, "message.html", status, heading=heading, message=text, link="/",
                    link_label="Back to voting")

    def with_cookie(response: Response, voter: db.Voter) -> Response:
        response.set_cookie(COOKIE, sessions.cookie(voter), max_age=30 * 86400, httponly=True, samesite="strict")
        return response

    def current_voter(request: Request) -> db.Voter | None:
        return sessions.from_cookie(request.cookies.get(COOKIE))

    def invited(voter: db.Voter) -> bool:
        return voter.role == "judge" or tables.is_invited(store, voter.id)

    def organiser_ok(request: Request) -> bool:
        return token_ok(request, token)

    @app.get("/static/arena.css")
    def css() -> FileResponse:
        return FileResponse(HERE / "static" / "arena.css", media_type="text/css")

    @app.get("/", response_class=HTMLResponse)
    def vote_page(request: Request) -> Response:
        voter = current_voter(request) or sessions.new()
        if invite_only and not invited(voter):
            return message(request, 403, "Invitation needed", "Voting here is by invitation: open the link with "
                                                              "your invite code from the organiser.")
        ballot = dealer.next_ballot(voter.id)
        if ballot is None:
            response = page(request, "message.html", heading="You have voted on every pair — thank you!",
                            message="The organiser will announce the results.", link=None)
            return with_cookie(response, voter)
        (question, answer_a), (_, answer_b) = (dealer.item(ballot.question_id, ballot.shown_a),
                                               dealer.item(ballot.question_id, ballot.shown_b))
        response = page(request, "vote.html", question=question, ballot=ballot.id, csrf=voter.csrf,
                        answer_a=answer_a, answer_b=answer_b, voted=len(dealer.voted(voter.id)),
                        total=dealer.pair_count(),
                        role=voter.role)
        return with_cookie(response, voter)

    @app.post("/vote")
    def vote(request: Request, ballot: str = Form(...), choice: str = Form(...), csrf: str = Form(...)) -> Response:
        voter = current_voter(request)
        if voter is None or not hmac.compare_digest(csrf.encode(), voter.csrf.encode()) or not same_origin(request):
            return message(request, 403, "Vote not accepted", "Your session expired or the form did not come from "
                                                              "this site. Please vote again from the page.")
        try:
            dealer.cast(voter, ballot, choice)
        except db.VoteRefused as exc:
            return message(request, 409, "Vote not accepted", str(exc))
        return RedirectResponse(f"/result/{ballot}", status_code=303)

    @app.get("/result/{ballot_id}", response_class=HTMLResponse)
    def result(request: Request, ballot_id: str) -> Response:
        voter = current_voter(request)
        vote = db.vote_for_ballot(store, ballot_id)
        if vote is None or voter is None or vote["voter_id"] != voter.id:
            return message(request, 404, "Nothing to show", "Vote first; the names appear after your vote.")
        return page(request, "result.html", choice_label=db.CHOICES[vote["choice"]], shown_a=vote["shown_a"],
                    shown_b=vote["shown_b"], winner=vote["winner"])

    @app.get("/join")
    def join(request: Request, key: str = "") -> Response:
        if not hmac.compare_digest(key.encode(), judge_key(token).encode()):
            return message(request, 403, "Invalid invitation", "Ask the organiser for a new judge link.")
        voter = sessions.voter((current_voter(request) or sessions.new()).id, "judge")
        if tables.voter_exists(store, voter.id):
            with store.transaction() as conn:
                db.save_voter(conn, voter)  # a voter who already voted: their later votes count as a judge's
        return with_cookie(RedirectResponse("/", status_code=303), voter)

    @app.get("/invite/{code}")
    def invite(request: Request, code: str) -> Response:
        voter = db.redeem_invite(store, sessions, code)
        if voter is None:
            return message(request, 403, "Invalid invitation", "This invite code is unknown: ask the organiser.")
        return with_cookie(RedirectResponse("/", status_code=303), voter)

    @app.get("/organiser", response_class=HTMLResponse)
    def organiser(request: Request) -> Response:
        if not organiser_ok(request):
            return message(request, 403, "Organisers only", "This page needs the organiser token.")
        table = standings(store, weights, rounds=rounds)
        questions = tables.question_count(store)
        return page(request, "organiser.html", table=table, total_votes=sum(table.votes.values()),
                    candidates=db.candidates(store), questions=questions, judge_key=judge_key(token),
                    token=request.query_params.get("token", ""), refresh=refresh_s,
                    base_url=str(request.base_url).rstrip("/"))

    @app.get("/organiser/votes.csv")
    def votes_csv(request: Request) -> Response:
        if not organiser_ok(request):
            return message(request, 403, "Organisers only", "This page needs the organiser token.")
        buffer = io.StringIO()
        db.write_votes_csv(db.all_votes(store), buffer)
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="votes.csv"'})

    app.state.dealer = dealer
    return app

