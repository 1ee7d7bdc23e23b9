"""Publishing a merged or exported model folder (weights, model card) to a Hugging Face model repository.

    url = push_folder(Path("runs/my-run/export-q8_0"), "me/my-run-gguf")

`huggingface_hub` creates the repository when it does not exist and uploads the folder in one commit. The token
comes from the environment variable HF_TOKEN only; it never appears in an error message, even when the server's
error echoes it. HF_ENDPOINT points the client at another hub (a mirror, or a stand-in in tests).
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from underdog.errors import ConfigError, UnderdogError, redact, register_secret_env

TOKEN_ENV = "HF_TOKEN"


def push_token(repo: str) -> str:
    """The token from $HF_TOKEN, and `repo` a valid repository id (both checked before anything is built), else
    one ConfigError line."""
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise ConfigError(f"--push {repo}: not a repository id ({str(exc).splitlines()[0]})") from None
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"--push {repo}: set the environment variable {TOKEN_ENV} to a Hugging Face write token")
    register_secret_env(TOKEN_ENV)
    return token


def push_folder(folder: Path, repo: str, private: bool = False) -> str:
    """Upload `folder` to the model repository `repo` (owner/name), creating it if needed; returns the commit's
    URL."""
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=push_token(repo))
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=folder, repo_id=repo, repo_type="model",
                                   commit_message=f"underdog: {folder.name}")
    except Exception as exc:  # HfHubHTTPError, or the transport errors of its HTTP library (httpx2 in 2.x)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UnderdogError(f"push to {repo} failed: {type(exc).__name__}: {redact(first)}") from None
    return str(commit.commit_url)
