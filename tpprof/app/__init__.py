"""The Streamlit dashboard shipped with the package: ``tpprof app`` serves ``streamlit_app.py``."""

from pathlib import Path

APP_FILE: Path = Path(__file__).resolve().parent / "streamlit_app.py"
