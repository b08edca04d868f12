import sys
def main(argv=None):
    print("diffmix", argv)
    return 0
if __name__ == "__main__":
    sys.exit(main())
