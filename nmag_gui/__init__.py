"""NeuralMAG Studio's desktop app (PySide6 + pyvistaqt), a thin layer on `engine`.

Widgets edit the problem description (`geometry_editor`, `panels`); `worker` owns the engine on
its own thread and emits frames; `spin_view` and `plots` turn frames into pictures;
`main_window` ties them together and `app.main` starts it.
"""
