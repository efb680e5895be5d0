use walden::Store;
#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.put("c", "k", &1).unwrap(), 1);
        assert_eq!(s.put("c", "k", &2).unwrap(), 2);
        assert_eq!(s.delete("c", "j").unwrap(), None);
        s.insert("c", "j", &5).unwrap();
        s.close().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.get::<i32>("c", "k").unwrap().unwrap().value, 2);
    assert_eq!(s.get::<i32>("c", "k").unwrap().unwrap().version, 2);
    assert_eq!(s.get::<i32>("c", "j").unwrap().unwrap().value, 5);
    println!("{:?}", s.stats());
}

#[test]
fn reopen_right_after_close_or_drop_is_never_locked() {
    let dir = tempfile::tempdir().unwrap();
    let opts = walden::Options {
        buffered_flush_interval_ms: 1,
        durability: walden::Durability::Buffered,
        ..Default::default()
    };
    for i in 0..200 {
        let s = Store::open_with(dir.path(), opts.clone()).unwrap();
        s.put("c", "k", &i).unwrap();
        if i % 2 == 0 {
            s.close().unwrap();
        } else {
            drop(s);
        }
    }
}
