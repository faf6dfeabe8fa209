"""HugeCTR v3.5's model files on any file system (formats spec §5-§7, §9, §10).

`filesystems` (every path a URL, atomic writes), `dense_files` (dense weights, optimizer states, BatchNorm
statistics, snapshot names), `sparse_files` (sparse model folders, sparse optimizer states), `graph_json`
(graph JSON text, builders and parser), `predictions` (export_predictions text) and `data_source`
(`move_to_local`). The functions work on plain arrays, tensors and dicts; the model wires them together.
"""
