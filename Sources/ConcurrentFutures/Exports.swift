@_exported import Futures
