"""Error types of parnassus.

Each error subclasses the builtin exception that callers already catch, so
``except ValueError`` still works, and carries enough context (file, tree,
branch, event) to fix the problem from the message alone.
"""

from __future__ import annotations


class ParnassusError(Exception):
    """Base class of all parnassus errors."""


class InvalidInputError(ParnassusError, ValueError):
    """An input file or array holds values parnassus cannot use."""


class InputFileNotFoundError(ParnassusError, FileNotFoundError):
    """An input file does not exist."""


class UnknownFormatError(InvalidInputError):
    """A file is not ROOT, Parquet or HepMC3 (or its suffix is not recognised)."""


class MissingBranchError(ParnassusError, KeyError):
    """A ROOT tree lacks a branch that the evt_tree layout needs.

    Attributes:
        path: the file.
        tree: the tree inside the file.
        branch: the missing branch.
        available: the branches that do exist.
    """

    def __init__(self, path, tree, branch, available):
        self.path = str(path)
        self.tree = tree
        self.branch = branch
        self.available = sorted(available)
        super().__init__(
            f"branch {branch!r} not found in tree {tree!r} of {self.path}; "
            f"branches that exist: {', '.join(self.available) or '(none)'}"
        )

    def __str__(self):  # KeyError would otherwise print the message quoted
        return self.args[0]


class MissingTreeError(ParnassusError, KeyError):
    """A ROOT file lacks the expected tree."""

    def __init__(self, path, tree, available):
        self.path = str(path)
        self.tree = tree
        self.available = sorted(available)
        super().__init__(
            f"tree {tree!r} not found in {self.path}; "
            f"objects in the file: {', '.join(self.available) or '(none)'}"
        )

    def __str__(self):
        return self.args[0]


class PluginNotFoundError(ParnassusError, LookupError):
    """No detector, backend or solver is registered under the requested name."""


class MissingDependencyError(ParnassusError, ImportError):
    """An optional dependency (PyTorch, TensorFlow, Pythia8, fastjet) is not installed."""


class CheckpointError(ParnassusError, ValueError):
    """A checkpoint folder is missing, corrupted, or made for another detector, backend or version."""


class NoWeightsError(ParnassusError, FileNotFoundError):
    """A detector card has no trained weights for the requested backend."""


class InvalidSettingError(ParnassusError, ValueError):
    """A run-time setting (solver step count, time grid, probability path) has an invalid value."""
