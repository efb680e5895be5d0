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
