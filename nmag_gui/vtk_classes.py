"""The VTK classes the views build by hand, each from its own module.

Why: `import vtk` loads every VTK module, about 0.47 s of the app's start beyond what pyvista
and pyvistaqt load for rendering (measured here, after them). The views import this module as
`vtk` (`from . import vtk_classes as vtk`), so their code reads as before. The rendering
back-end and text (vtkRenderingOpenGL2, vtkRenderingFreeType, vtkInteractionStyle) come with
pyvista's plotting, which every view uses.
"""
from vtkmodules.vtkCommonCore import VTK_COLOR_MODE_MAP_SCALARS, vtkFloatArray, vtkLookupTable  # noqa: F401
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkDataSetAttributes  # noqa: F401
from vtkmodules.vtkCommonTransforms import vtkTransform  # noqa: F401
from vtkmodules.vtkFiltersCore import vtkAssignAttribute, vtkClipPolyData, vtkFlyingEdges3D, vtkGlyph3D  # noqa: F401
from vtkmodules.vtkFiltersGeneral import vtkTransformFilter  # noqa: F401
from vtkmodules.vtkFiltersSources import vtkArrowSource, vtkConeSource  # noqa: F401
from vtkmodules.vtkInteractionWidgets import vtkLogoRepresentation, vtkLogoWidget  # noqa: F401
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor  # noqa: F401
from vtkmodules.vtkRenderingCore import (vtkActor, vtkCellPicker, vtkLight, vtkPolyDataMapper,  # noqa: F401
                                         vtkTextActor)
