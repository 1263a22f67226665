"""``openjukebox serve``: a REST API (FastAPI) and a browser page (Gradio) over one job queue.

``jobs`` keeps every generation on disk and runs them in order through ``openjukebox.api.sample``;
``app`` exposes them as JSON endpoints; ``ui`` is the page. FastAPI and Gradio are imported only
here (``pip install "openjukebox[serve]"``), never by the rest of the package.
"""
