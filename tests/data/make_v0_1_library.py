import os, sys, shutil
sys.path.insert(0, "/work/main")
from pathlib import Path
from tests.helpers import drop, write, encode, scene
from watcherd.cli import main
from PIL import Image
def go():
    root = Path("/tmp/v1lib/lib")
    t = root / "thumbs"
    drop(t / "cats" / "2024" / "tom.jpg", scene((320, 240), seed=1))
    drop(t / "dogs" / "rex.png", scene((200, 300), seed=2), "PNG")
    drop(root / "source" / "s.jpg", scene((100, 100), seed=4))
    data = encode(scene((240, 160), seed=3))
    write(t / "misc" / "a.jpg", data)
    write(t / "blank.png", encode(Image.new("RGB", (50, 40), "white"), "PNG"))
    write(t / "bad.jpg", b"not an image at all")
    [os.utime(p, (1.6e9, 1.6e9)) for p in root.rglob("*") if p.is_file()]; assert main(["scan", str(root)]) == 0
    # drag one thumbnail through folders
    thumb = next((t / "cats" / "2024").glob("*_.png"))
    (t / "orange").mkdir()
    os.rename(thumb, t / "orange" / thumb.name)
    [os.utime(p, (1.6e9, 1.6e9)) for p in root.rglob("*") if p.is_file()]; assert main(["scan", str(root)]) == 0
    # exact collision and a deleted (missing) thumbnail
    write(t / "again.jpg", data)
    dog = next((t / "dogs").glob("*_.png"))
    os.unlink(dog)
    [os.utime(p, (1.6e9, 1.6e9)) for p in root.rglob("*") if p.is_file()]; assert main(["scan", str(root)]) == 0
    assert main(["untag", str(root), next((t / "orange").glob("*_.png")).name, "orange"]) == 0
    
if __name__ == '__main__':
    go()
