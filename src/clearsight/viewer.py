"""``clearsight view``: a local web app to restore one photo and look at the result, or to browse a folder that
``clearsight restore`` wrote (the optional ``app`` extra: Starlette served by uvicorn).

Everything is served from this module: one HTML page with its own script and style, no asset from the
internet, no telemetry, bound to 127.0.0.1 by default. Uploads and results live in a temporary folder that is
removed when the server stops; large images are shown downscaled and restored in full.

Routes (JSON unless said otherwise):

* ``GET /``: the page. ``GET /api/models``: the restorers, ``auto`` first.
* ``POST /api/restore`` (multipart: ``file``, ``model``): restores the upload; returns the id, the method and
  what ``auto`` found, the judge's verdict, the seconds, and the URLs below.
* ``GET /result/{id}/before`` and ``/after``: downscaled JPEG previews; ``/result/{id}/download``: the full
  restored image in the upload's format.
* ``GET /api/gallery``: the before/after pairs of the folder given to ``view``; ``GET /gallery/{i}/before`` and
  ``/after``: their previews.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ._errors import ClearsightError

__all__ = ["create_app", "serve", "gallery_pairs", "PREVIEW_SIDE"]

#: Longest side of the previews the page shows (the download is full size).
PREVIEW_SIDE = 1600
#: Results kept in the temporary folder; older ones are deleted.
KEEP_RESULTS = 32
#: Largest upload accepted, in bytes.
MAX_UPLOAD = 200 * 2**20


def _need_app():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ClearsightError("clearsight view needs: pip install 'clearsight[app]'") from None


def _preview_jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    if rgb.dtype != np.uint8:  # 16-bit or float pixels: show them as 8 bits
        from .recognition import _to_float

        rgb = (np.clip(_to_float(rgb), 0, 1) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(rgb)
    im.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def gallery_pairs(folder: str | os.PathLike, inputs: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """``(before, after)`` pairs of a folder written by ``clearsight restore``: each output is matched with the
    input of the same relative path and name (any extension) under ``inputs``; without ``inputs``, from the
    summaries that ``restore --json`` wrote into the folder (``*.json``)."""
    import json

    from .infer import IMAGE_EXTENSIONS

    folder = Path(folder)
    if not folder.is_dir():
        raise ClearsightError(f"{folder}: no such folder")
    pairs: list[tuple[Path, Path]] = []
    if inputs is not None:
        inputs = Path(inputs)
        if not inputs.is_dir():
            raise ClearsightError(f"{inputs}: no such folder")
        index: dict[str, Path] = {}
        for p in sorted(inputs.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                index.setdefault(str(p.relative_to(inputs).with_suffix("")), p)
        for out in sorted(folder.rglob("*")):
            if out.is_file() and out.suffix.lower() in IMAGE_EXTENSIONS and not out.name.startswith("."):
                src = index.get(str(out.relative_to(folder).with_suffix("")))
                if src is not None:
                    pairs.append((src, out))
        return pairs
    for summary in sorted(folder.glob("*.json")):
        try:
            rows = json.loads(summary.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(rows, list):
            continue
        for r in rows:
            if isinstance(r, dict) and r.get("status") == "done" and r.get("source") and r.get("output"):
                src, out = Path(r["source"]), Path(r["output"])
                if src.is_file() and out.is_file() and out.suffix.lower() in IMAGE_EXTENSIONS:
                    pairs.append((src, out))
    return pairs


class _Store:
    """Uploads and results in a temporary folder, the newest :data:`KEEP_RESULTS` kept."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="clearsight-view-"))
        self.items: OrderedDict[str, dict] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, item: dict) -> str:
        key = uuid.uuid4().hex[:16]
        with self.lock:
            self.items[key] = item
            while len(self.items) > KEEP_RESULTS:
                _, old = self.items.popitem(last=False)
                shutil.rmtree(old["dir"], ignore_errors=True)
        return key

    def get(self, key: str) -> dict | None:
        with self.lock:
            return self.items.get(key)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def create_app(folder: str | os.PathLike | None = None, inputs: str | os.PathLike | None = None):
    """The Starlette application (see the module notes); ``folder`` (and ``inputs``) feed the gallery."""
    _need_app()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from .models import create_model, list_models, model_info

    store = _Store()
    pairs = gallery_pairs(folder, inputs) if folder is not None else []
    restorers: dict[str, object] = {}
    busy = threading.Lock()  # one restoration at a time: memory stays that of one image
    names = ["auto"] + [n for n in list_models() if n != "auto"]

    def error(msg: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=status)

    async def page(request):
        return HTMLResponse(_PAGE.replace("{{GALLERY}}", "true" if pairs else "false"))

    async def models(request):
        return JSONResponse([{"name": n, "kind": model_info(n).kind, "description": model_info(n).description}
                             for n in names])  # fmt: skip

    def _restore(data: bytes, filename: str, model: str) -> dict:
        from .batch import same_format
        from .infer import restore_array
        from .io import extension_for_format, load_image, save_image
        from .judging import judge_np

        work = Path(tempfile.mkdtemp(dir=store.root))
        suffix = Path(filename).suffix.lower()[:8] if Path(filename).suffix else ""
        src = work / f"input{suffix}"
        src.write_bytes(data)
        try:
            rec = load_image(src)
        except ClearsightError as e:  # one line, without the temporary path
            raise ClearsightError(str(e).replace(f"{src}: ", "").replace(str(src), "the upload")) from None
        fmt = same_format(src)
        with busy:
            if model not in restorers:
                restorers[model] = create_model(model)
            t0 = time.perf_counter()
            out, state = restore_array(rec.rgb, restorers[model])
            seconds = time.perf_counter() - t0
        stem = Path(filename).stem or "image"
        dst = work / f"{stem}_restored{extension_for_format(fmt)}"
        save_image(dst, out, rec.alpha, format=fmt, grayscale=rec.grayscale, icc_profile=rec.icc_profile,
                   exif=rec.exif)  # fmt: skip
        (work / "before.jpg").write_bytes(_preview_jpeg(rec.rgb))
        (work / "after.jpg").write_bytes(_preview_jpeg(out))
        try:
            verdict = judge_np(rec.rgb, out)
            said, ok, harms = str(verdict), verdict.ok, verdict.harms
        except ClearsightError as e:  # e.g. an image too small to judge: the restored image is still there
            said, ok, harms = f"not judged ({e})", True, []
        h, w = rec.rgb.shape[:2]
        return {"dir": str(work), "download": str(dst), "method": state.method, "reason": state.reason,
                "verdict": said, "ok": ok, "harms": harms, "seconds": round(seconds, 2),
                "size": [w, h], "unchanged": bool(np.array_equal(out, rec.rgb))}  # fmt: skip

    async def restore(request):
        try:
            form = await request.form(max_part_size=MAX_UPLOAD)
        except Exception as e:  # noqa: BLE001 - a malformed request
            return error(f"could not read the upload: {e}")
        upload, model = form.get("file"), str(form.get("model") or "auto")
        if upload is None or not hasattr(upload, "read"):
            return error("no file in the request (field 'file')")
        if model not in names:
            return error(f"unknown restorer {model!r}")
        data = await upload.read()
        if not data:
            return error(f"{upload.filename or 'the upload'}: empty file")
        try:
            item = await run_in_threadpool(_restore, data, upload.filename or "image", model)
        except ClearsightError as e:
            return error(f"{upload.filename}: {e}")
        except (ValueError, OSError) as e:
            return error(f"{upload.filename}: {e}")
        key = store.add(item)
        public = {k: v for k, v in item.items() if k not in ("dir", "download")}
        public.update(id=key, model=model, filename=Path(item["download"]).name,
                      before=f"/result/{key}/before", after=f"/result/{key}/after",
                      download=f"/result/{key}/download")  # fmt: skip
        return JSONResponse(public)

    async def result(request):
        item = store.get(request.path_params["key"])
        what = request.path_params["what"]
        if item is None or what not in ("before", "after", "download"):
            return error("no such result (results are kept while the viewer runs, the newest 32)", 404)
        if what == "download":
            return FileResponse(item["download"], filename=Path(item["download"]).name)
        return FileResponse(Path(item["dir"]) / f"{what}.jpg", media_type="image/jpeg")

    async def gallery(request):
        return JSONResponse([{"index": i, "name": str(after.name), "before": f"/gallery/{i}/before",
                              "after": f"/gallery/{i}/after"} for i, (_, after) in enumerate(pairs)])  # fmt: skip

    async def gallery_image(request):
        from .io import load_image

        i, what = request.path_params["index"], request.path_params["what"]
        if not 0 <= i < len(pairs) or what not in ("before", "after"):
            return error("no such image", 404)
        try:
            rec = await run_in_threadpool(load_image, pairs[i][0 if what == "before" else 1])
        except ClearsightError as e:
            return error(str(e), 422)
        return Response(await run_in_threadpool(_preview_jpeg, rec.rgb), media_type="image/jpeg")

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/models", models),
            Route("/api/restore", restore, methods=["POST"]),
            Route("/api/gallery", gallery),
            Route("/result/{key}/{what}", result),
            Route("/gallery/{index:int}/{what}", gallery_image),
        ],
        lifespan=_lifespan(store),
    )
    app.state.store = store
    return app


def _lifespan(store: _Store):
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            store.close()

    return lifespan


def serve(folder=None, inputs=None, host: str = "127.0.0.1", port: int = 8765, log=print) -> None:
    """Run the viewer until interrupted."""
    _need_app()
    import uvicorn

    app = create_app(folder, inputs)
    log(f"clearsight viewer on http://{host}:{port}/ (Ctrl+C stops it)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.store.close()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clearsight viewer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{background:#223;color:#fff;padding:.6em 1em;font-size:1.1em}
main{padding:1em;max-width:1400px;margin:auto}
#drop{border:2px dashed #889;border-radius:8px;padding:1.2em;text-align:center;background:#fff}
#drop.over{background:#e8eefc}
.row{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.8em 0}
button,select{font-size:1em;padding:.3em .8em}
#compare{position:relative;display:inline-block;max-width:100%;user-select:none}
#compare img{display:block;max-width:100%;height:auto}
#beforewrap{position:absolute;top:0;left:0;height:100%;overflow:hidden;border-right:2px solid #fff}
#beforewrap img{max-width:none}
#slider{display:block;margin:.4em 0}
.ok{color:#175f17;font-weight:600}.harmed{color:#a31515;font-weight:600}
#status{min-height:1.4em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em}
.grid figure{margin:0;background:#fff;padding:.5em;border-radius:6px}
.grid img{width:49%;vertical-align:top}
</style></head><body>
<header>clearsight &mdash; restore a photo and look at it before and after</header>
<main>
<div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*"></div>
<div class="row">
 <label>Restorer <select id="model"></select></label>
 <button id="go" disabled>Restore</button>
 <a id="download" style="display:none">Download the result</a>
 <span id="status"></span>
</div>
<div id="info"></div>
<div id="view" style="display:none">
 <div id="compare"><img id="after" alt="after"><div id="beforewrap"><img id="before" alt="before"></div></div>
 <input type="range" id="slider" min="0" max="100" value="50" aria-label="before / after">
 <div class="row"><span>left: before</span><span>right: after</span></div>
</div>
<section id="gallery" style="display:none"><h2>Folder: before / after</h2><div class="grid" id="grid"></div></section>
</main>
<script>
const $ = id => document.getElementById(id);
let chosen = null;
function esc(s){const d=document.createElement('div');d.textContent=s;return d.innerHTML;}
fetch('/api/models').then(r=>r.json()).then(ms=>{for(const m of ms){const o=document.createElement('option');
 o.value=m.name;o.textContent=m.name+' ('+m.kind+')';o.title=m.description;$('model').appendChild(o);}});
function pick(f){chosen=f;$('go').disabled=!f;$('status').textContent=f?f.name:'';}
$('file').onchange=e=>pick(e.target.files[0]);
const drop=$('drop');
drop.ondragover=e=>{e.preventDefault();drop.classList.add('over');};
drop.ondragleave=()=>drop.classList.remove('over');
drop.ondrop=e=>{e.preventDefault();drop.classList.remove('over');if(e.dataTransfer.files.length)pick(e.dataTransfer.files[0]);};
function setSplit(){const v=$('slider').value, img=$('after');
 $('beforewrap').style.width=v+'%';$('before').style.width=img.clientWidth+'px';
 $('slider').style.width=img.clientWidth+'px';}
$('slider').oninput=setSplit;window.onresize=setSplit;
$('go').onclick=async()=>{
 if(!chosen)return;$('go').disabled=true;$('status').textContent='restoring '+chosen.name+' ...';
 const fd=new FormData();fd.append('file',chosen);fd.append('model',$('model').value);
 try{const r=await fetch('/api/restore',{method:'POST',body:fd});const j=await r.json();
  if(!r.ok){$('status').textContent='error: '+j.error;return;}
  $('status').textContent='done in '+j.seconds+' s';
  const cls=j.ok?'ok':'harmed';
  $('info').innerHTML='<p>'+esc(j.model)+' ran <b>'+esc(j.method)+'</b>'+(j.reason?': '+esc(j.reason):'')+
   (j.unchanged?' (image left unchanged)':'')+'. Judge: <span class="'+cls+'" id="verdict">'+esc(j.verdict)+
   '</span>. '+j.size[0]+' x '+j.size[1]+' px.</p>';
  $('after').onload=setSplit;$('after').src=j.after;$('before').src=j.before;$('view').style.display='block';
  const a=$('download');a.href=j.download;a.download=j.filename;a.style.display='inline';
 }catch(e){$('status').textContent='error: '+e;}
 finally{$('go').disabled=false;}
};
if({{GALLERY}}){fetch('/api/gallery').then(r=>r.json()).then(items=>{$('gallery').style.display='block';
 for(const it of items){const f=document.createElement('figure');
  f.innerHTML='<img loading="lazy" src="'+it.before+'" alt="before"> <img loading="lazy" src="'+it.after+
  '" alt="after"><figcaption>'+esc(it.name)+'</figcaption>';$('grid').appendChild(f);}});}
</script></body></html>
"""
