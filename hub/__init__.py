"""hub: the exchange's FastAPI service.

Specified in specs/hub-api.md, specs/submission.md and specs/hub-storage.md.

Public entry points: :func:`hub.app.create_app` and the ``ncii-hub`` command (:mod:`hub.cli`).
"""
