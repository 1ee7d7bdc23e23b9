"""A stand-in for the Hugging Face Hub on loopback: the few endpoints `HfApi.create_repo` and `upload_folder`
call (repo creation, pre-upload modes, the LFS batch API with basic transfers, the NDJSON commit), keeping what
was committed in memory. A wrong token gets a 401 whose message echoes it, as some servers do."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")


@dataclass
class Hub:
    token: str
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo id -> path -> bytes
    lfs: dict[str, bytes] = field(default_factory=dict)  # oid -> bytes uploaded through the LFS API
    commits: list[str] = field(default_factory=list)  # commit messages
    validated: list[dict] = field(default_factory=list)  # model card front matters checked


def hub_app(hub: Hub) -> FastAPI:
    app = FastAPI()

    def refused(request: Request) -> JSONResponse | None:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        if sent == hub.token:
            return None
        return JSONResponse({"error": f"Invalid credentials in Authorization header: token {sent} is not valid"},
                            status_code=401)

    @app.post("/api/repos/create")
    async def create(request: Request) -> JSONResponse:
        if denied := refused(request):
            return denied
        body = await request.json()
        repo = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        hub.repos.setdefault(repo, {})
        return JSONResponse({"url": f"{request.base_url}{repo}"})

    @app.get("/api/models/{owner}/{name}")
    async def info(owner: str, name: str, request: Request) -> JSONResponse:
        return refused(request) or JSONResponse({"id": f"{owner}/{name}", "sha": "0" * 40})

    @app.post("/api/validate-yaml")
    async def validate(request: Request) -> JSONResponse:
        """The model card's front matter must be a YAML mapping whose tags are a list of strings."""
        content = (await request.json())["content"]
        parts = content.split("---\n")
        meta = yaml.safe_load(parts[1]) if content.startswith("---\n") and len(parts) > 2 else None
        if not isinstance(meta, dict) or not all(isinstance(t, str) for t in meta.get("tags", [])):
            return JSONResponse({"errors": [{"message": "front matter is not valid model card metadata"}]},
                                status_code=400)
        hub.validated.append(meta)
        return JSONResponse({"warnings": []})

    @app.post("/api/models/{owner}/{name}/preupload/{revision}")
    async def preupload(owner: str, name: str, revision: str, request: Request) -> JSONResponse:
        if denied := refused(request):
            return denied
        files = (await request.json())["files"]
        return JSONResponse({"files": [{"path": f["path"], "shouldIgnore": False,
                                        "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                                       for f in files]})

    @app.post("/{owner}/{name}.git/info/lfs/objects/batch")
    async def batch(owner: str, name: str, request: Request) -> JSONResponse:
        if denied := refused(request):
            return denied
        objects = (await request.json())["objects"]
        return JSONResponse({"transfer": "basic", "objects": [
            {"oid": o["oid"], "size": o["size"], "authenticated": True,
             "actions": {"upload": {"href": f"{request.base_url}lfs-upload/{o['oid']}"}}} for o in objects]})

    @app.put("/lfs-upload/{oid}")
    async def upload(oid: str, request: Request) -> JSONResponse:
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != oid:
            return JSONResponse({"error": "sha256 mismatch"}, status_code=400)
        hub.lfs[oid] = data
        return JSONResponse({})

    @app.post("/api/models/{owner}/{name}/commit/{revision}")
    async def commit(owner: str, name: str, revision: str, request: Request) -> JSONResponse:
        if denied := refused(request):
            return denied
        files = hub.repos.setdefault(f"{owner}/{name}", {})
        for line in (await request.body()).splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                hub.commits.append(value["summary"])
            elif item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                files[value["path"]] = hub.lfs[value["oid"]]
        return JSONResponse({"commitUrl": f"{request.base_url}{owner}/{name}/commit/{'1' * 40}",
                             "commitOid": "1" * 40})

    return app
