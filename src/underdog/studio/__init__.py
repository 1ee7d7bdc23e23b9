"""The studio: a local web app over one project, beside the CLI (`underdog studio`; docs/studio.md).

    from underdog.studio.app import create_app
    app = create_app(Project("my-domain"), token="...")      # uvicorn.run(app, host="127.0.0.1", port=8766)

It reads every stage's store through the stages' own functions (studio/queries.py) and starts commands as a user
would (studio/jobs.py); no stage imports it.
"""
