"""The dashboard's views: one module per tab, each exposing ``render()``.

Views are thin: widgets (bound to the URL query so a view can be shared) → plain values →
cached table functions from :mod:`tpprof.views` → figures from :mod:`tpprof.plots`.
"""
